"""Hand-made result tables with answers known by construction (a uniquely named module: test
directories share one ``conftest`` module name, so helpers are not imported from conftest)."""

import numpy as np
import pyarrow as pa

from zstream.io import RESULT_SCHEMA


def make_results(spectrum_id, z, delta_chi2, blend_score, *, is_source=None, is_blend=None, **columns) -> pa.Table:
    """A RESULT_SCHEMA table with the scored columns given, the classic ones filled plausibly, newer ones null.

    Each keyword in ``columns`` replaces that result column (cast to its schema type) or, when
    RESULT_SCHEMA lacks it, is appended with an inferred type (e.g. ``chi2_alt``, ``spectype``).
    """
    n = len(spectrum_id)
    delta_chi2 = np.asarray(delta_chi2, dtype=float)
    blend_score = np.asarray(blend_score, dtype=float)
    base = {
        "spectrum_id": list(spectrum_id),
        "z": list(z),
        "z_err": [1e-4] * n,
        "chi2_min": [1000.0] * n,
        "delta_chi2": list(delta_chi2),
        "robustness": [1.0] * n,
        "is_source": list(np.log10(np.clip(delta_chi2, 1e-300, None)) > -2) if is_source is None else list(is_source),
        "is_blend": list(blend_score > 0.011) if is_blend is None else list(is_blend),
        "blend_score": list(blend_score),
        "z_blend": [None] * n,
        "coefficients": [[1.0, 0.0]] * n,
        "basis_version": ["test"] * n,
        "warnings": [0] * n,
        "n_pixels_used": [3800] * n,
    }
    table = pa.Table.from_pydict({name: base.get(name, [None] * n) for name in RESULT_SCHEMA.names},
                                 schema=RESULT_SCHEMA)  # columns not set here are null
    for name, values in columns.items():
        values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in list(values)]
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))
        else:
            table = table.append_column(name, pa.array(values))
    return table


def make_truth(is_source, is_blend, z_true) -> pa.Table:
    """A truth table: ``z`` null and class ``false_noise`` for false detections, ``z2`` for blends."""
    is_source = np.asarray(is_source, dtype=bool)
    is_blend = np.asarray(is_blend, dtype=bool)
    return pa.table({
        "spectrum_id": [f"t{i}" for i in range(is_source.size)],
        "z": pa.array([float(z) if s else None for z, s in zip(z_true, is_source)], pa.float64()),
        "source_class": ["oii" if s else "false_noise" for s in is_source],
        "is_source": is_source,
        "is_blend": is_blend,
        "z2": pa.array([float(z) + 0.3 if b else None for z, b in zip(z_true, is_blend)], pa.float64()),
    })


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_scanned_population(n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """Results + truth of a synthetic labelled population with every reliability column.

    Real sources have larger Δχ², robustness and candidate gap; false detections include
    spikes (large ``spike_score``, χ²/dof); a source's redshift is right more often when its
    robustness is high; blends have a larger blend score. 5 % of robustness and 10 % of
    ``chi2_alt`` are null.
    """
    rng = np.random.default_rng(seed)
    is_source = rng.random(n) < 0.8
    is_blend = is_source & (rng.random(n) < 0.15)
    spike = ~is_source & (rng.random(n) < 0.5)
    z_true = rng.uniform(0.1, 4.0, n)
    robustness = np.where(is_source, rng.normal(3.0, 1.5, n), rng.normal(0.5, 1.0, n))
    z_right = is_source & (rng.random(n) < sigmoid(2.0 * (robustness - 1.0)))
    pixels = np.full(n, 3800.0)
    chi2_min = pixels * np.where(spike, rng.uniform(1.2, 2.0, n), rng.normal(1.0, 0.03, n))
    gap = pixels * 10.0 ** np.where(is_source, rng.normal(-1.5, 0.4, n), rng.normal(-2.8, 0.4, n))
    results = make_results(
        [f"t{i}" for i in range(n)],
        np.where(z_right, z_true, z_true + 0.4),
        10.0 ** np.where(is_source, rng.normal(-1.4, 0.5, n), rng.normal(-2.4, 0.5, n)),
        np.abs(rng.normal(np.where(is_blend, 0.03, 0.006), 0.008)),
        chi2_min=chi2_min,
        robustness=np.where(rng.random(n) < 0.05, np.nan, robustness),
        chi2_alt=np.where(rng.random(n) < 0.1, np.nan, chi2_min + gap),
        spike_score=np.where(spike, rng.normal(6.0, 2.0, n), rng.normal(0.0, 1.0, n)),
        spectype=rng.choice(["GALAXY", "QSO", "STAR"], n, p=[0.8, 0.1, 0.1]).tolist(),
    )
    return results, make_truth(is_source, is_blend, z_true)
