"""Simulator settings and measurements shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from zstream.sim import SimConfig, simulate
from zstream.sim.sky import sky_model


def bright_single_class(name: str, **overrides: Any) -> SimConfig:
    """Sources of one class only, so bright that noise is negligible, without defects."""
    settings = dict(
        false_fraction=0.0, blend_fraction=0.0, class_weights={name: 1.0}, line_snr_median=3000.0, line_snr_dex=0.0,
        cont_snr_median=300.0, cont_snr_dex=0.0, sky_residual_rms=0.0, offset_fraction=0.0, flatfield_fraction=0.0,
    )
    return SimConfig(**(settings | overrides))


def recovered_sky_residual_rms(population: str, n: int = 150, seed: int = 3, **overrides: Any) -> float:
    """RMS over pure-noise false detections of the sky-residual amplitude fitted on the ``sky`` column.

    Each spectrum is regressed (ivar-weighted) on the line part of its own ``sky``
    column and that part's wavelength derivative (the two shapes of
    ``defects.sky_residual``); the RMS of the first coefficient estimates
    ``sky_residual_rms``, plus a noise floor of about 0.002. ``overrides`` change
    the population's settings.
    """
    noise_only = dict(false_fraction=1.0, blend_fraction=0.0, false_weights={"false_noise": 1.0}, offset_fraction=0.0)
    config = SimConfig.preset(population, **(noise_only | overrides))
    batch, _ = simulate(n, seed, config)
    model = sky_model(config.wavelength_min, config.wavelength_max, config.pixel_size, config.lsf_sigma)
    line_share = model.line_counts / model.counts
    amplitudes = []
    for flux, ivar, wave, sky in zip(batch.flux, batch.ivar, batch.wavelength, batch.extra.column("sky").to_pylist()):
        line = np.asarray(sky) * line_share
        design = np.stack([line, np.gradient(line, wave)], axis=1)
        weights = ivar.astype(np.float64)[:, None]
        normal = design.T @ (weights * design)
        amplitudes.append(np.linalg.solve(normal, design.T @ (weights[:, 0] * flux))[0])
    return float(np.sqrt(np.mean(np.square(amplitudes))))
