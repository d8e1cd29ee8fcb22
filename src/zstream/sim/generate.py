"""Draw a labelled batch of MUSE-like spectra: true sources, false detections and blends.

Every spectrum has its own random stream seeded by ``(seed, index)`` (roles are
assigned from ``(seed, n)``), so output is reproducible whatever the platform.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from zstream.io.records import SpectrumBatch
from zstream.sim import defects
from zstream.sim.config import BLEND_CLASSES, SPECTYPES, SimConfig
from zstream.sim.populations import POPULATIONS, SourceModel
from zstream.sim.sky import SkyModel, sky_model

TRUTH_SCHEMA = pa.schema(
    [
        pa.field("spectrum_id", pa.string(), nullable=False),
        pa.field("z", pa.float64()),
        pa.field("source_class", pa.string(), nullable=False),
        pa.field("spectype", pa.string()),
        pa.field("is_source", pa.bool_(), nullable=False),
        pa.field("is_blend", pa.bool_(), nullable=False),
        pa.field("z2", pa.float64()),
        pa.field("line_snr", pa.float64()),
        pa.field("cont_snr", pa.float64()),
        pa.field("flux_ratio", pa.float64()),
    ]
)
"""Truth table: ``z`` of the (brighter) source, null for false detections; ``spectype``
its spectral class (:data:`~zstream.sim.config.SPECTYPES`: ``GALAXY``, ``QSO`` or
``STAR``), null for false detections; ``z2`` and ``flux_ratio`` (secondary/primary S/N)
for blends only; ``line_snr`` is the integrated S/N of the brightest emission line,
``cont_snr`` the median continuum S/N per pixel in 7650–7850 Å (Bourahma et al. 2026,
"MUSE NMF redshifts", Sect. 2)."""

SKY_TYPE = pa.list_(pa.float32())
"""Arrow type of the ``sky`` pass-through column of the simulated spectra."""

CONTINUUM_SNR_WINDOW = (7650.0, 7850.0)
MIN_BLEND_SEPARATION = 0.01
"""Minimum |z2 − z| / (1 + z) of the two components of a blend (twice the GF tolerance)."""

_ROLE_SOURCE, _ROLE_FALSE, _ROLE_BLEND = 0, 1, 2


def simulate(
    n: int, seed: int, config: SimConfig | None = None, *, progress: bool = False
) -> tuple[SpectrumBatch, pa.Table]:
    """Simulate ``n`` labelled spectra.

    Parameters
    ----------
    n : int
        Number of spectra (≥ 1).
    seed : int
        Seed; the same ``(n, seed, config)`` gives identical output.
    config : SimConfig, optional
        Instrument, population mix and defect settings (defaults: MUSE-like).
    progress : bool
        Show a tqdm bar on stderr.

    Returns
    -------
    batch : SpectrumBatch
        ``n`` spectra on the shared observed grid; ``batch.z`` holds the true redshift
        of sources (the brighter component for blends) and NaN for false detections,
        so the batch doubles as a training set. ``batch.extra`` has the pass-through
        columns ``spectype`` (string, the truth's, null for false detections) and,
        when ``config.write_sky``, ``sky`` (list<float32>, one value per pixel: the
        subtracted sky spectrum in the flux units of the spectrum; the noise variance
        is proportional to it and the sky-subtraction residuals to its line part).
    truth : pyarrow.Table
        One row per spectrum, schema :data:`TRUTH_SCHEMA`.

    Raises
    ------
    ValueError
        If ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"simulate: n must be at least 1, got {n}")
    config, wave, sky, roles = _setting(n, seed, config)
    ids = [f"sim{seed}-{index:06d}" for index in range(n)]
    fluxes, ivars, skies, rows = [], [], [], []
    for index in tqdm(range(n), desc="simulate", unit="spectra", disable=not progress):
        flux, ivar, sky_flux, row = _simulate_one(
            np.random.default_rng([seed, index]), int(roles[index]), config, wave, sky
        )
        fluxes.append(flux)
        ivars.append(ivar)
        skies.append(sky_flux)
        rows.append(row)
    truth = pa.Table.from_pylist([{"spectrum_id": sid, **row} for sid, row in zip(ids, rows)], schema=TRUTH_SCHEMA)
    z = np.array([np.nan if row["z"] is None else row["z"] for row in rows], dtype=np.float64)
    extra = {"spectype": truth.column("spectype")}
    if config.write_sky:
        extra["sky"] = pa.array(skies, SKY_TYPE)
    batch = SpectrumBatch(spectrum_id=ids, wavelength=[wave] * n, flux=fluxes, ivar=ivars, z=z, extra=pa.table(extra))
    return batch, truth


def _setting(n: int, seed: int, config: SimConfig | None) -> tuple[SimConfig, np.ndarray, SkyModel, np.ndarray]:
    """What every spectrum of a draw shares: the settings (default MUSE-like), grid, sky and roles."""
    config = config or SimConfig()
    sky = sky_model(config.wavelength_min, config.wavelength_max, config.pixel_size, config.lsf_sigma)
    return config, config.wavelength, sky, _assign_roles(n, seed, config)


def _assign_roles(n: int, seed: int, config: SimConfig) -> np.ndarray:
    """Exact counts of false detections and blends, in a seeded random order."""
    n_false = int(round(n * config.false_fraction))
    n_blend = min(int(round(n * config.blend_fraction)), n - n_false)
    roles = np.full(n, _ROLE_SOURCE)
    roles[:n_false] = _ROLE_FALSE
    roles[n_false : n_false + n_blend] = _ROLE_BLEND
    return np.random.default_rng([seed, n]).permutation(roles)


def _choose(rng: np.random.Generator, weights: dict[str, float], allowed: tuple[str, ...] | None = None) -> str:
    names = [name for name in weights if allowed is None or name in allowed]
    probabilities = np.array([weights[name] for name in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=probabilities / probabilities.sum()))]


def _window_median(wave: np.ndarray, values: np.ndarray) -> float:
    """Median of ``values`` in the continuum S/N window (whole range if the grid misses it)."""
    inside = (wave >= CONTINUUM_SNR_WINDOW[0]) & (wave <= CONTINUUM_SNR_WINDOW[1])
    return float(np.median(values[inside] if inside.any() else values))


def _line_snr(model: SourceModel, sigma: np.ndarray) -> float:
    return float(np.sqrt(np.sum((model.brightest_line / sigma) ** 2))) if model.brightest_line is not None else np.nan


def _scale_to_snr(model: SourceModel, sigma: np.ndarray, wave: np.ndarray, snr: float) -> SourceModel:
    """Brightest line to ``snr`` (integrated), or, for continuum sources, continuum to ``snr`` per pixel.

    A source with nothing on the grid (possible on a custom grid) is left as it is.
    """
    current = _line_snr(model, sigma)
    if np.isnan(current):
        current = _window_median(wave, model.continuum / sigma)
    return model.scaled(snr / current) if current > 0 else model


def _draw_snr(rng: np.random.Generator, median: float, dex: float, floor: float) -> float:
    return max(floor, median * 10.0 ** rng.normal(0.0, dex))


def _draw_source(
    rng: np.random.Generator, name: str, config: SimConfig, wave: np.ndarray, sigma: np.ndarray
) -> SourceModel:
    model = POPULATIONS[name](rng, wave, config.lsf_sigma, config.line_ratios)
    if model.brightest_line is None:
        snr = _draw_snr(rng, config.cont_snr_median, config.cont_snr_dex, config.min_cont_snr)
    else:
        snr = _draw_snr(rng, config.line_snr_median, config.line_snr_dex, config.min_line_snr)
    return _scale_to_snr(model, sigma, wave, snr)


def _draw_secondary(
    rng: np.random.Generator, primary: SourceModel, config: SimConfig, wave: np.ndarray, sigma: np.ndarray
) -> tuple[SourceModel, float]:
    """Fainter blend component at a clearly different redshift, and its S/N ratio to the primary."""
    name = _choose(rng, config.class_weights, BLEND_CLASSES)
    secondary = POPULATIONS[name](rng, wave, config.lsf_sigma, config.line_ratios)
    while abs(secondary.z - primary.z) < MIN_BLEND_SEPARATION * (1.0 + primary.z):
        secondary = POPULATIONS[name](rng, wave, config.lsf_sigma, config.line_ratios)
    ratio = float(rng.uniform(*config.blend_ratio_range))
    primary_snr = _line_snr(primary, sigma)
    reference = primary_snr if primary_snr > 0 else config.line_snr_median  # primary off a custom grid
    return _scale_to_snr(secondary, sigma, wave, ratio * reference), ratio


def _false_signal(
    rng: np.random.Generator, kind: str, wave: np.ndarray, sky: SkyModel, depth: float, sigma: np.ndarray
) -> np.ndarray:
    """The spurious signal that made the detector fire."""
    if kind == "false_sky":
        return defects.sky_residual(rng, wave, sky, depth, rng.uniform(0.03, 0.08))
    if kind == "false_cosmic":
        return defects.cosmic_rays(rng, sigma, int(rng.integers(1, 5)))
    if kind == "false_flatfield":
        return defects.flatfield_distortion(rng, wave, depth, rng.uniform(0.5, 2.0))
    return np.zeros_like(wave)


def source_models(n: int, seed: int, config: SimConfig | None = None) -> list[SourceModel | None]:
    """The noise-free primary source of each spectrum that ``simulate(n, seed, config)`` draws.

    The same random streams, stopped once the primary is drawn: the exact model behind each
    simulated source (the brighter component of a blend), ``None`` for false detections. An
    oracle fitter built on them measures how much redshift information the simulated data hold
    (``zstream bench limit``).
    """
    config, wave, sky, roles = _setting(n, seed, config)
    return [_draw_primary(np.random.default_rng([seed, index]), int(roles[index]), config, wave, sky)[3]
            for index in range(n)]


def rest_frame_sources(
    n: int,
    seed: int,
    config: SimConfig | None = None,
    *,
    rest_range: tuple[float, float],
    log_step: float,
    indices: Iterable[int] | None = None,
) -> Iterator[tuple[np.ndarray, SourceModel] | None]:
    """The primary source of each spectrum of ``simulate(n, seed, config)``, redrawn on a wide grid.

    The same random streams as :func:`source_models`, but the population is evaluated on
    the observed-frame grid ``rest · (1 + z)``, where ``rest`` runs over ``rest_range`` (Å)
    in steps of ``log_step`` in natural log λ; the model is not scaled to the spectrum's S/N.
    Yields ``(rest, model)`` for each of ``indices`` (default: every spectrum), ``None`` for
    a false detection, one at a time since fine wide grids are large. An oracle that moves a
    source to any trial redshift needs its spectrum beyond the observed range
    (``zstream bench limit``).
    """
    config, _, _, roles = _setting(n, seed, config)
    rest = np.exp(np.arange(np.log(rest_range[0]), np.log(rest_range[1]), log_step))
    for index in range(n) if indices is None else indices:
        rng = np.random.default_rng([seed, index])
        _, row = _draw_identity(rng, int(roles[index]), config)
        if not row["is_source"]:
            yield None
            continue
        population = POPULATIONS[row["source_class"]]
        z = population(copy.deepcopy(rng), rest[[0, -1]], config.lsf_sigma, config.line_ratios).z
        yield rest, population(rng, rest * (1.0 + z), config.lsf_sigma, config.line_ratios)


def _draw_primary(
    rng: np.random.Generator, role: int, config: SimConfig, wave: np.ndarray, sky: SkyModel
) -> tuple[float, np.ndarray, dict, SourceModel | None]:
    """Noise depth, noise σ, truth row (class filled in) and primary source (None for a false detection)."""
    depth, row = _draw_identity(rng, role, config)
    sigma = sky.noise_sigma(depth)
    if role == _ROLE_FALSE:
        return depth, sigma, row, None
    return depth, sigma, row, _draw_source(rng, row["source_class"], config, wave, sigma)


def _draw_identity(rng: np.random.Generator, role: int, config: SimConfig) -> tuple[float, dict]:
    """Noise depth and truth row with the class filled in: the draws that come before the primary source's."""
    depth = float(10.0 ** rng.uniform(-0.3, 0.3))
    row = {"z": None, "spectype": None, "is_source": role != _ROLE_FALSE, "is_blend": role == _ROLE_BLEND,
           "z2": None, "line_snr": None, "cont_snr": None, "flux_ratio": None}
    if role == _ROLE_FALSE:
        row["source_class"] = _choose(rng, config.false_weights)
        return depth, row
    allowed = BLEND_CLASSES if role == _ROLE_BLEND else None
    row["source_class"] = _choose(rng, config.class_weights, allowed)
    row["spectype"] = SPECTYPES[row["source_class"]]
    return depth, row


def _simulate_one(
    rng: np.random.Generator, role: int, config: SimConfig, wave: np.ndarray, sky: SkyModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Flux, ivar, subtracted sky spectrum (all float32) and truth row of one spectrum."""
    depth, sigma, row, primary = _draw_primary(rng, role, config, wave, sky)
    if primary is None:
        signal = _false_signal(rng, row["source_class"], wave, sky, depth, sigma)
    else:
        signal = primary.flux
        line_snr = _line_snr(primary, sigma)
        row.update(z=primary.z, line_snr=None if np.isnan(line_snr) else line_snr,
                   cont_snr=_window_median(wave, primary.continuum / sigma))
        if role == _ROLE_BLEND:
            secondary, ratio = _draw_secondary(rng, primary, config, wave, sigma)
            signal = signal + secondary.flux
            row.update(z2=secondary.z, flux_ratio=ratio)
        if rng.random() < config.flatfield_fraction:
            signal = signal + defects.flatfield_distortion(rng, wave, depth, rng.uniform(*config.flatfield_range))
    flux = signal + sigma * rng.standard_normal(wave.size)
    flux += defects.sky_residual(rng, wave, sky, depth, config.sky_residual_rms)
    if rng.random() < config.offset_fraction:
        flux += defects.smooth_offset(rng, wave, depth, rng.uniform(*config.offset_range))
    ivar = 1.0 / sigma**2
    bad = defects.bad_pixels(rng, wave.size, config.bad_pixel_fraction)
    flux[bad] = rng.normal(0.0, 100.0, int(bad.sum())) * sigma[bad]
    ivar[bad] = 0.0
    return flux.astype(np.float32), ivar.astype(np.float32), sky.flux(depth).astype(np.float32), row
