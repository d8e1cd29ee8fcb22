"""Data defects added to simulated spectra: the reasons real spectra fail or fool a fitter.

Every function returns an additive flux term (or a mask) on the observed grid;
amplitudes are in units of the spectrum's noise ``depth`` so they keep their
meaning whatever the flux scale.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

from zstream.sim.sky import SkyModel


def sky_residual(rng: np.random.Generator, wave: np.ndarray, sky: SkyModel, depth: float, amplitude: float) -> np.ndarray:
    """Imperfect sky subtraction: a scaled copy of the sky lines plus a wavelength-shift (P-Cygni-like) term.

    ``amplitude`` is the RMS fraction of sky-line flux left behind.
    """
    line_flux = sky.line_flux(depth)
    scale = rng.normal(0.0, amplitude)
    shift = rng.normal(0.0, 0.1)  # Å of wavelength-calibration mismatch
    return scale * line_flux + shift * np.gradient(line_flux, wave)


def cosmic_rays(rng: np.random.Generator, sigma: np.ndarray, count: int) -> np.ndarray:
    """``count`` unmasked 1–2 pixel spikes of 5–50 σ."""
    spikes = np.zeros_like(sigma)
    for start in rng.integers(0, sigma.size - 1, count):
        width = int(rng.integers(1, 3))
        spikes[start : start + width] += rng.uniform(5.0, 50.0) * sigma[start : start + width]
    return spikes


def flatfield_distortion(rng: np.random.Generator, wave: np.ndarray, depth: float, amplitude: float) -> np.ndarray:
    """Distorted continuum at the blue and red ends (bad flat-fielding, Bourahma et al. 2026 Sect. 4.1)."""
    span = wave[-1] - wave[0]
    blue = np.exp(-(wave - wave[0]) / (span * rng.uniform(0.02, 0.15)))
    red = np.exp(-(wave[-1] - wave) / (span * rng.uniform(0.02, 0.15)))
    return depth * amplitude * (rng.choice([-1.0, 1.0]) * blue + rng.uniform(-1.0, 1.0) * red)


def smooth_offset(rng: np.random.Generator, wave: np.ndarray, depth: float, amplitude: float) -> np.ndarray:
    """Negative-leaning low-order additive systematic that can push the median flux below zero."""
    x = np.linspace(-1.0, 1.0, wave.size)
    shape = legendre.legval(x, np.concatenate([[-1.0], rng.normal(0.0, 0.3, 3)]))
    return depth * amplitude * shape


def bad_pixels(rng: np.random.Generator, n_pixels: int, fraction: float) -> np.ndarray:
    """Boolean mask of bad pixels (ivar = 0): scattered single pixels plus, sometimes, a short bad column."""
    mask = rng.random(n_pixels) < fraction
    if rng.random() < 0.1:
        start = int(rng.integers(0, n_pixels - 20))
        mask[start : start + int(rng.integers(3, 20))] = True
    return mask
