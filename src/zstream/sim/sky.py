"""Night-sky model that sets the noise: a continuum plus [OI], Na D and OH emission lines.

The prominent OH lines are at their approximate observed wavelengths; a weak
synthetic forest (fixed seed, independent of the simulation seed) fills the
Meinel bands so the red end is line-dense, as in MUSE data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from zstream.sim.profiles import gaussian_lines

SKY_CONTINUUM_COUNTS = 100.0
"""Sky continuum counts per pixel; sets the ratio of sky-line flux to noise."""

_ATOMIC_LINES = ((5577.34, 40.0), (5889.95, 6.0), (5895.92, 5.0), (6300.30, 15.0), (6363.78, 5.0))
_STRONG_OH = (
    6863.96, 6923.22, 7276.41, 7316.28, 7340.89, 7369.25, 7401.69, 7750.64, 7794.11, 7821.50, 7841.27, 7913.71,
    7964.65, 7993.33, 8344.60, 8399.17, 8430.17, 8465.36, 8761.31, 8767.92, 8827.10, 8885.85, 8919.60, 8943.40,
    8958.08, 9001.40, 9037.90, 9049.20, 9311.90, 9340.80,
)
_MEINEL_BANDS = ((6250.0, 6600.0), (6800.0, 7050.0), (7240.0, 7450.0), (7700.0, 8050.0), (8280.0, 8550.0),
                 (8750.0, 9100.0), (9150.0, 9350.0))
_FOREST_SEED = 20240917
_FOREST_LINES_PER_BAND = 25


@dataclass(frozen=True)
class SkyModel:
    """Sky counts per pixel on the observed grid.

    Attributes
    ----------
    counts : ndarray (n_pixels,)
        Total sky counts (continuum + lines); variance is proportional to it.
    line_counts : ndarray (n_pixels,)
        The emission-line part alone, the source of sky-subtraction residuals.
    """

    counts: np.ndarray
    line_counts: np.ndarray

    def noise_sigma(self, depth: float) -> np.ndarray:
        """Per-pixel noise sigma in flux units; ``depth`` is the noise in the sky continuum."""
        return depth * np.sqrt(self.counts / SKY_CONTINUUM_COUNTS)

    def flux(self, depth: float) -> np.ndarray:
        """Total sky flux (continuum + lines) in the units of :meth:`noise_sigma`: the subtracted sky spectrum.

        The noise variance is proportional to it:
        ``noise_sigma(depth)**2 == depth * flux(depth) / sqrt(SKY_CONTINUUM_COUNTS)``.
        """
        return depth * self.counts / np.sqrt(SKY_CONTINUUM_COUNTS)

    def line_flux(self, depth: float) -> np.ndarray:
        """Sky-line part of :meth:`flux`, the source of sky-subtraction residuals."""
        return depth * self.line_counts / np.sqrt(SKY_CONTINUUM_COUNTS)


@lru_cache(maxsize=8)
def sky_model(wavelength_min: float, wavelength_max: float, pixel_size: float, lsf_sigma: float) -> SkyModel:
    """Build (once per grid) the sky on a linear grid.

    Parameters
    ----------
    wavelength_min, wavelength_max, pixel_size : float
        Observed grid in Å, as in :class:`~zstream.sim.config.SimConfig`.
    lsf_sigma : float
        Instrumental sigma in Å; sky lines are unresolved.

    Returns
    -------
    SkyModel
    """
    n_pixels = int(np.floor((wavelength_max - wavelength_min) / pixel_size + 1e-9)) + 1
    wave = wavelength_min + pixel_size * np.arange(n_pixels)
    forest_rng = np.random.default_rng(_FOREST_SEED)
    centers = [w for w, _ in _ATOMIC_LINES] + list(_STRONG_OH)
    peaks = [p for _, p in _ATOMIC_LINES] + list(forest_rng.uniform(10.0, 40.0, len(_STRONG_OH)))
    for low, high in _MEINEL_BANDS:
        centers += list(forest_rng.uniform(low, high, _FOREST_LINES_PER_BAND))
        peaks += list(10.0 ** forest_rng.uniform(-0.5, 0.8, _FOREST_LINES_PER_BAND))
    centers_arr = np.asarray(centers)
    sigmas = np.full(centers_arr.size, lsf_sigma)
    # peaks are in units of the continuum level; convert to integrated flux for gaussian_lines
    fluxes = np.asarray(peaks) * np.sqrt(2.0 * np.pi) * lsf_sigma
    line_counts = SKY_CONTINUUM_COUNTS * gaussian_lines(wave, centers_arr, fluxes, sigmas).sum(axis=0)
    throughput_loss = 1.0 + 0.6 * (wavelength_min / wave) ** 6
    continuum_counts = SKY_CONTINUUM_COUNTS * throughput_loss
    return SkyModel(counts=continuum_counts + line_counts, line_counts=line_counts)
