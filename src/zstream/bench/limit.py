"""``zstream bench limit``: how much redshift information the simulated spectra hold, class by class.

Two oracle fitters scan each simulated single source against its own noise-free
model over the whole trial range the scanner gives its class (``ScanConfig``:
stars within ±0.002, galaxies and QSOs 0–6.7): the exact model moved to each
trial redshift with a free non-negative amplitude (``exact``), and the same plus
four free-sign Legendre polynomials (``exact+poly``), which stand in for the
smooth freedom a real fitter's templates have and absorb the smooth offsets and
flat-field distortions of the data, at the price of the continuum shape. The
simulator redraws each source on a wide rest-frame grid
(``zstream.sim.rest_frame_sources``), so a source moved far from its redshift is
still the same spectrum. Their good fractions (|Δz| / (1 + z) < 0.005, as
``zstream evaluate``) say what a fitter that knew every source exactly would
reach on the same spectra, far aliases included. Set beside ``bench accuracy``
on the same seeds, they separate the loss the templates cause from the loss the
data impose. ``--accuracy DIR`` reads that run's ``accuracy.json`` and prints ours
beside them, and scans the same single sources once more with that run's basis
(``DIR/basis.parquet``), the default scanner and the spectra's own weights, sky
and mask, but each flux replaced by its noise-free model (``noise-free``): what
our templates get wrong even where the data hold no noise at all, over the whole
redshift range. A class that fails there loses to a bias of its templates (a
redshift they prefer whatever the data), not to their noise.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import orjson
from numpy.polynomial import legendre
from scipy import fft

from zstream.bench.accuracy import add_test_seed_arguments, scored_populations
from zstream.evaluate.metrics import GF_TOLERANCE, relative_error
from zstream.io import load_basis
from zstream.io.records import Basis, SpectrumBatch
from zstream.redshift import ScanConfig, Scanner
from zstream.sim import SPECTYPES, SimConfig, rest_frame_sources, simulate, source_models
from zstream.sim.populations import SourceModel

N_POLYNOMIALS = 4
"""Free-sign Legendre terms of the ``exact+poly`` oracle (orders 0–3)."""

ORACLES = ("exact", "exact+poly")

ORACLE_LOG_STEP = 2e-5
"""Step of the oracles' trial grid in ln (1 + z), and of the rest-frame grid they move (~6 km/s)."""

ALL = "all"
"""Row of every single source, whatever its class (the acceptance table's overall GF)."""

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
    parser.add_argument("--accuracy", type=Path, default=None,
                        help="a bench accuracy --out directory on the same seeds: print its GF per class beside, and scan "
                             "the noise-free models with its basis.parquet")
    parser.add_argument("--out", type=Path, default=Path("limit.json"), help="JSON summary (default limit.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure the oracle GF per class on both populations and print it (beside ours when given)."""
    populations = scored_populations(args)
    sources = {name: single_sources(args.n, seed, config) for name, (seed, config) in populations.items()}
    limits = {name: oracle_good_fraction(singles) for name, singles in sources.items()}
    ours = orjson.loads((args.accuracy / "accuracy.json").read_bytes())["populations"] if args.accuracy else {}
    columns = ORACLES
    if args.accuracy:
        basis = load_basis(args.accuracy / "basis.parquet")
        columns = (*ORACLES, NOISE_FREE)
        for name, singles in sources.items():
            for source_class, fraction in noise_free_good_fraction(singles, basis).items():
                limits[name].setdefault(source_class, {})[NOISE_FREE] = fraction
    args.out.write_bytes(orjson.dumps({"n": args.n, "seeds": {n: s for n, (s, _) in
                                       populations.items()}, "oracle_good_fraction": limits}, option=orjson.OPT_INDENT_2))
    width = 8 * len(columns) + 12
    print(f"{'class':14s} " + " ".join(f"{population + ': ' + ' '.join(columns):>{width}s} {'ours':>6s}"
                                       for population in limits))
    for name in sorted({c for by_class in limits.values() for c in by_class}, key=lambda c: (c == ALL, c)):
        cells = []
        for population, by_class in limits.items():
            figures = ours.get(population, {})
            mine = figures.get("good_fraction") if name == ALL else figures.get("good_fraction_by_class", {}).get(name)
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
    rows : list of int
        Index of each row in the simulated set ``simulate(n, seed, config)``.
    n, seed, config
        The arguments of that draw.
    """

    batch: SpectrumBatch
    models: list[SourceModel]
    classes: np.ndarray
    rows: list[int]
    n: int
    seed: int
    config: SimConfig

    def rest_frame(self) -> Iterator[tuple[np.ndarray, SourceModel]]:
        """The same sources redrawn on the oracles' wide rest-frame grid, one at a time."""
        return rest_frame_sources(self.n, self.seed, self.config, rest_range=_oracle_rest_range(self.config),
                                  log_step=ORACLE_LOG_STEP, indices=self.rows)


def single_sources(n: int, seed: int, config: SimConfig) -> SingleSources:
    """The single sources of ``simulate(n, seed, config)``: what the oracles and the noise-free scan score."""
    batch, truth = simulate(n, seed, config)
    models = source_models(n, seed, config)
    blended = truth.column("is_blend").to_pylist()
    rows = [i for i, model in enumerate(models) if model is not None and not blended[i]]
    classes = np.array(truth.column("source_class").to_pylist(), dtype=object)[rows]
    return SingleSources(batch.take(rows), [models[i] for i in rows], classes, rows, n, seed, config)


def _oracle_rest_range(config: SimConfig) -> tuple[float, float]:
    """Rest wavelengths (Å) the observed range covers at every trial redshift the scanner has, with a margin."""
    scan = ScanConfig()
    ranges = [scan.z_range(spectype) for spectype in set(SPECTYPES.values())]
    lowest, highest = min(low for low, _ in ranges), max(high for _, high in ranges)
    return 0.99 * config.wavelength_min / (1.0 + highest), 1.01 * config.wavelength_max / (1.0 + lowest)


def oracle_good_fraction(sources: SingleSources) -> dict[str, dict[str, float]]:
    """GF of each oracle (:data:`ORACLES`, module docstring) per source class of ``sources``, and over all
    of them (:data:`ALL`)."""
    batch, scan, good = sources.batch, ScanConfig(), {}
    for i, ((rest, model), name) in enumerate(zip(sources.rest_frame(), sources.classes)):
        redshifts = oracle_redshifts(rest, model.flux, batch.wavelength[i], batch.flux[i], batch.ivar[i],
                                     scan.z_range(SPECTYPES[name]))
        flags = (relative_error(np.array(redshifts), model.z) < GF_TOLERANCE).tolist()
        good.setdefault(name, []).append(flags)
        good.setdefault(ALL, []).append(flags)
    return {name: dict(zip(ORACLES, np.mean(flags, axis=0).tolist())) for name, flags in sorted(good.items())}


def noise_free_good_fraction(sources: SingleSources, basis: Basis) -> dict[str, float]:
    """GF per source class (and over all, :data:`ALL`) of the default scan with ``basis`` over ``sources``,
    each flux replaced by its noise-free model (weights, sky column and masked pixels unchanged), so χ²
    keeps the units of the real noise."""
    if not sources.models:
        return {}
    noise_free = replace(sources.batch, flux=[model.flux.astype(np.float32) for model in sources.models])
    found = np.asarray(Scanner(basis, ScanConfig()).scan(noise_free).column("z").to_pylist(), float)
    good = relative_error(found, np.array([model.z for model in sources.models])) < GF_TOLERANCE
    by_class = {name: float(good[sources.classes == name].mean()) for name in sorted(set(sources.classes))}
    return {**by_class, ALL: float(good.mean())}


def oracle_redshifts(rest: np.ndarray, shape: np.ndarray, wavelength: np.ndarray, flux: np.ndarray,
                     ivar: np.ndarray, z_range: tuple[float, float]) -> tuple[float, float]:
    """Best trial redshift of ``flux`` for each oracle of :data:`ORACLES`: the source ``shape``, sampled at
    rest wavelengths ``rest`` (log-uniform), moved to each trial z in ``z_range``, with a non-negative
    amplitude alone, and with the amplitude and the Legendre terms.

    Trials are every step of the rest grid in ln (1 + z). Each observed pixel falls in the nearest
    bin of that grid, so every sum over the pixels of a moved template (its overlap with the data,
    its norm, its cross terms with the polynomials) is a correlation of binned data with the shape,
    taken by FFT for all trials at once. Pixels with ``ivar = 0`` are ignored. The least-squares
    solution of each trial comes from its 5 × 5 normal equations (the χ² drop each explains is
    maximised); a negative amplitude is clipped to zero (the polynomial part refitted alone).
    """
    log_step = float(np.log(rest[1] / rest[0]))
    weight = np.asarray(ivar, np.float64)
    data = np.where(weight > 0, np.asarray(flux, np.float64), 0.0)
    bins = np.rint((np.log(np.asarray(wavelength, np.float64)) - np.log(rest[0])) / log_step).astype(np.int64)
    x = np.linspace(-1.0, 1.0, bins.size)
    polynomials = np.stack([legendre.legval(x, np.eye(N_POLYNOMIALS)[order]) for order in range(N_POLYNOMIALS)])
    size = fft.next_fast_len(int(bins.max()) + 1 + rest.size, real=True)
    lags = np.arange(int(np.ceil(np.log1p(z_range[0]) / log_step)), int(np.floor(np.log1p(z_range[1]) / log_step)) + 1)

    def correlate(pixel_values: np.ndarray, template: np.ndarray) -> np.ndarray:
        """Σ over pixels of pixel_values · template moved by each lag (rows: one per row of pixel_values)."""
        binned = np.stack([np.bincount(bins, weights=row, minlength=size) for row in np.atleast_2d(pixel_values)])
        full = fft.irfft(fft.rfft(binned, size) * np.conj(fft.rfft(template, size)), size)
        return np.take(full, lags, axis=-1, mode="wrap")

    moved = correlate(np.vstack([weight * data, weight * polynomials]), shape)
    overlap, cross = moved[0], moved[1:].T
    norm = correlate(weight, shape**2)[0]
    poly_gram = (polynomials * weight) @ polynomials.T
    poly_rhs = polynomials @ (weight * data)
    gram = np.empty((lags.size, N_POLYNOMIALS + 1, N_POLYNOMIALS + 1))
    gram[:, 0, 0] = norm
    gram[:, 0, 1:], gram[:, 1:, 0], gram[:, 1:, 1:] = cross, cross, poly_gram
    rhs = np.column_stack([overlap, np.broadcast_to(poly_rhs, (lags.size, N_POLYNOMIALS))])
    scale = max(float(norm.max()), 1e-300)
    solution = np.linalg.solve(gram + 1e-12 * scale * np.eye(N_POLYNOMIALS + 1), rhs[..., None])[..., 0]
    poly_only = poly_rhs @ np.linalg.solve(poly_gram, poly_rhs)
    with_poly = np.where(solution[:, 0] > 0, np.einsum("ij,ij->i", solution, rhs), poly_only)
    alone = np.where(overlap > 0, overlap**2 / np.maximum(norm, 1e-300), 0.0)
    trial_z = np.expm1(lags * log_step)
    return float(trial_z[int(np.argmax(alone))]), float(trial_z[int(np.argmax(with_poly))])


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
