"""``zstream bench limit``: how much redshift information the simulated spectra hold, class by class.

Two oracle fitters scan each simulated single source against its own noise-free
model (``zstream.sim.source_models``), at trial redshifts near the truth: the
exact model shifted in log λ with a free non-negative amplitude (``exact``),
and the same plus four free-sign Legendre polynomials (``exact+poly``), which
stand in for the smooth freedom a real fitter's templates have and absorb the
smooth offsets and flat-field distortions of the data, at the price of the
continuum shape. Their good fractions (|Δz| / (1 + z) < 0.005, as
``zstream evaluate``) say what a fitter that knew every source exactly would
reach on the same spectra; far aliases are not counted, since the scan never
leaves the truth's neighbourhood. Set beside ``bench accuracy`` on the same
seeds, they separate the loss the templates cause from the loss the data
impose. ``--accuracy DIR`` reads that run's ``accuracy.json`` and prints ours
beside them, and scans the same single sources once more with that run's basis
(``DIR/basis.parquet``), the default scanner and the spectra's own weights, sky
and mask, but each flux replaced by its noise-free model (``noise-free``): what
our templates get wrong even where the data hold no noise at all, over the whole
redshift range. A class that fails there loses to a bias of its templates (a
redshift they prefer whatever the data), not to their noise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import orjson
from numpy.polynomial import legendre

from zstream.bench.accuracy import add_test_seed_arguments, scored_populations
from zstream.evaluate.metrics import GF_TOLERANCE, relative_error
from zstream.io import load_basis
from zstream.io.records import Basis, SpectrumBatch
from zstream.sim import SimConfig, simulate, source_models
from zstream.sim.populations import SourceModel

N_POLYNOMIALS = 4
"""Free-sign Legendre terms of the ``exact+poly`` oracle (orders 0–3)."""

ORACLES = ("exact", "exact+poly")

NOISE_FREE = "noise-free"
"""Column of our scan of the noise-free models (``--accuracy``)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench limit``."""
    parser = subparsers.add_parser(
        "limit",
        help="information limit: GF per class of an oracle that fits each source with its own noise-free model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_test_seed_arguments(parser)
    parser.add_argument("--n", type=int, default=1000, help="spectra in each set (default 1000)")
    parser.add_argument("--window", type=float, default=0.05,
                        help="trial redshifts within ± window · (1 + z) of the truth (default 0.05)")
    parser.add_argument("--accuracy", type=Path, default=None,
                        help="a bench accuracy --out directory on the same seeds: print its GF per class beside, and scan "
                             "the noise-free models with its basis.parquet")
    parser.add_argument("--out", type=Path, default=Path("limit.json"), help="JSON summary (default limit.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure the oracle GF per class on both populations and print it (beside ours when given)."""
    populations = scored_populations(args)
    sources = {name: single_sources(args.n, seed, config) for name, (seed, config) in populations.items()}
    limits = {name: oracle_good_fraction(singles, args.window) for name, singles in sources.items()}
    ours = orjson.loads((args.accuracy / "accuracy.json").read_bytes())["populations"] if args.accuracy else {}
    columns = ORACLES
    if args.accuracy:
        basis = load_basis(args.accuracy / "basis.parquet")
        columns = (*ORACLES, NOISE_FREE)
        for name, singles in sources.items():
            for source_class, fraction in noise_free_good_fraction(singles, basis).items():
                limits[name].setdefault(source_class, {})[NOISE_FREE] = fraction
    args.out.write_bytes(orjson.dumps({"window": args.window, "n": args.n, "seeds": {n: s for n, (s, _) in
                                       populations.items()}, "oracle_good_fraction": limits}, option=orjson.OPT_INDENT_2))
    width = 8 * len(columns) + 12
    print(f"{'class':14s} " + " ".join(f"{population + ': ' + ' '.join(columns):>{width}s} {'ours':>6s}"
                                       for population in limits))
    for name in sorted({c for by_class in limits.values() for c in by_class}):
        cells = []
        for population, by_class in limits.items():
            mine = ours.get(population, {}).get("good_fraction_by_class", {}).get(name)
            oracles = " ".join(f"{_cell(by_class.get(name, {}).get(column)):>6s}" for column in columns)
            cells.append(f"{oracles:>{width}s} {_cell(mine):>6s}")
        print(f"{name:14s} " + " ".join(cells))
    return 0


@dataclass(frozen=True)
class SingleSources:
    """The single (unblended) true sources of one simulated set, with the noise-free model behind each.

    Attributes
    ----------
    batch : SpectrumBatch
        Their simulated spectra, in the set's order.
    models : list of SourceModel
        The noise-free source of each row of ``batch``.
    classes : ndarray (n,) of str
        Simulated source class of each row.
    """

    batch: SpectrumBatch
    models: list[SourceModel]
    classes: np.ndarray


def single_sources(n: int, seed: int, config: SimConfig) -> SingleSources:
    """The single sources of ``simulate(n, seed, config)``: what the oracles and the noise-free scan score."""
    batch, truth = simulate(n, seed, config)
    models = source_models(n, seed, config)
    blended = truth.column("is_blend").to_pylist()
    rows = [i for i, model in enumerate(models) if model is not None and not blended[i]]
    classes = np.array(truth.column("source_class").to_pylist(), dtype=object)[rows]
    return SingleSources(batch.take(rows), [models[i] for i in rows], classes)


def oracle_good_fraction(sources: SingleSources, window: float) -> dict[str, dict[str, float]]:
    """GF of each oracle (:data:`ORACLES`, module docstring) per source class of ``sources``."""
    batch, good = sources.batch, {}
    for i, (model, name) in enumerate(zip(sources.models, sources.classes)):
        redshifts = oracle_redshifts(model, batch.wavelength[i], batch.flux[i], batch.ivar[i], window)
        good.setdefault(name, []).append((relative_error(np.array(redshifts), model.z) < GF_TOLERANCE).tolist())
    return {name: dict(zip(ORACLES, np.mean(flags, axis=0).tolist())) for name, flags in sorted(good.items())}


def noise_free_good_fraction(sources: SingleSources, basis: Basis) -> dict[str, float]:
    """GF per source class of the default scan with ``basis`` over ``sources``, each flux replaced by its
    noise-free model (weights, sky column and masked pixels unchanged), so χ² keeps the units of the
    real noise."""
    # imported here: zstream.redshift loads torch, which the oracles do not need
    from zstream.redshift import ScanConfig, Scanner

    if not sources.models:
        return {}
    noise_free = replace(sources.batch, flux=[model.flux.astype(np.float32) for model in sources.models])
    found = np.asarray(Scanner(basis, ScanConfig()).scan(noise_free).column("z").to_pylist(), float)
    good = relative_error(found, np.array([model.z for model in sources.models])) < GF_TOLERANCE
    return {name: float(good[sources.classes == name].mean()) for name in sorted(set(sources.classes))}


def oracle_redshifts(model: SourceModel, wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                     window: float, step: float = 1e-4) -> tuple[float, float]:
    """Best trial redshift of ``flux`` for each oracle of :data:`ORACLES`: ``model`` moved to each trial z,
    with a non-negative amplitude alone, and with the amplitude and the Legendre terms.

    The model's f_λ λ, a function of rest log λ, is moved to trial ``z`` and divided by λ again;
    trials are ``model.z ± window · (1 + model.z)`` in steps of ``step · (1 + model.z)``. Pixels
    with ``ivar = 0`` are ignored. The least-squares solution of each trial comes from its 5 × 5
    normal equations (the χ² drop each explains is maximised); a negative amplitude is clipped to zero
    (the polynomial part refitted alone).
    """
    wavelength = np.asarray(wavelength, np.float64)
    weight = np.asarray(ivar, np.float64)
    data = np.where(weight > 0, np.asarray(flux, np.float64), 0.0)
    loglam = np.log10(wavelength)
    rest_loglam, shape = loglam - np.log10(1.0 + model.z), model.flux * wavelength
    trial_z = model.z + (1.0 + model.z) * np.arange(-window, window + step / 2, step)
    trial_z = trial_z[trial_z > -1.0]
    shifted = np.stack([np.interp(loglam - np.log10(1.0 + z), rest_loglam, shape, left=0.0, right=0.0) / wavelength
                        for z in trial_z])
    x = np.linspace(-1.0, 1.0, wavelength.size)
    polynomials = np.stack([legendre.legval(x, np.eye(N_POLYNOMIALS)[order]) for order in range(N_POLYNOMIALS)])
    poly_gram = (polynomials * weight) @ polynomials.T
    poly_rhs = polynomials @ (weight * data)
    cross = (shifted * weight) @ polynomials.T
    gram = np.empty((trial_z.size, N_POLYNOMIALS + 1, N_POLYNOMIALS + 1))
    gram[:, 0, 0] = (shifted**2 * weight).sum(axis=1)
    gram[:, 0, 1:], gram[:, 1:, 0], gram[:, 1:, 1:] = cross, cross, poly_gram
    rhs = np.column_stack([shifted @ (weight * data), np.broadcast_to(poly_rhs, (trial_z.size, N_POLYNOMIALS))])
    solution = np.linalg.solve(gram + 1e-12 * np.eye(N_POLYNOMIALS + 1), rhs[..., None])[..., 0]
    poly_only = poly_rhs @ np.linalg.solve(poly_gram, poly_rhs)
    with_poly = np.where(solution[:, 0] > 0, np.einsum("ij,ij->i", solution, rhs), poly_only)
    alone = np.where(rhs[:, 0] > 0, rhs[:, 0] ** 2 / np.maximum(gram[:, 0, 0], 1e-300), 0.0)
    return float(trial_z[int(np.argmax(alone))]), float(trial_z[int(np.argmax(with_poly))])


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
