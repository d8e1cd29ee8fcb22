"""The log10-λ grid and resampling of spectra onto it with inverse variance propagated."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

LN10 = math.log(10.0)


@dataclass(frozen=True)
class LogGrid:
    """A grid uniform in log10 λ (λ in Å).

    Defaults: the range of the MUSE rest-frame grid of Bourahma et al. 2026,
    2.77 ≤ log10 λ ≤ 3.97 (the MUSE range 4600–9350 Å for 0 ≤ z ≤ 6.7), with a step
    8× their 2.215525e-5: 1.77242e-4, 2.4 Å at 6,000 Å, about two MUSE pixels or one
    line-spread FWHM. Their step oversamples the pixels 3.5×; on simulated MUSE spectra
    the coarser grid measured better redshifts (its NMF templates cannot learn sub-pixel
    spikes) and scanned faster, and 16× was worse again (BENCHMARKS.md, "Rest-grid
    resolution").
    """

    log10_min: float = 2.77
    log10_max: float = 3.97
    step: float = 1.77242e-4

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.log10_max > self.log10_min):
            raise ValueError(
                f"invalid grid: need step > 0 and log10_max > log10_min, got "
                f"min={self.log10_min}, max={self.log10_max}, step={self.step}"
            )

    @cached_property
    def n_pixels(self) -> int:
        """Number of grid points (both ends included where the step divides the range)."""
        return int(math.floor((self.log10_max - self.log10_min) / self.step + 1e-9)) + 1

    @cached_property
    def loglam(self) -> np.ndarray:
        """log10 λ of every pixel, shape ``(n_pixels,)``, float64."""
        return self.log10_min + self.step * np.arange(self.n_pixels, dtype=np.float64)

    @property
    def wavelength(self) -> np.ndarray:
        """λ in Å of every pixel, shape ``(n_pixels,)``."""
        return 10.0**self.loglam

    def shift_of(self, z: np.ndarray | float) -> np.ndarray | float:
        """Pixel shift (fractional) that corresponds to redshift ``z``."""
        return np.log10(1.0 + np.asarray(z, dtype=np.float64)) / self.step

    def z_of(self, shift: np.ndarray | float) -> np.ndarray | float:
        """Redshift corresponding to a (fractional) pixel shift."""
        return 10.0 ** (np.asarray(shift, dtype=np.float64) * self.step) - 1.0

    def to_dict(self) -> dict[str, float]:
        """Plain-dict form, for basis-file metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> "LogGrid":
        """Inverse of :meth:`to_dict`."""
        return cls(float(values["log10_min"]), float(values["log10_max"]), float(values["step"]))


def resample_to_grid(
    loglam_in: np.ndarray, flux: np.ndarray, ivar: np.ndarray, loglam_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate flux onto ``loglam_out`` and propagate its variance.

    An output pixel at fraction ``a`` of the way from input pixel ``j`` to
    ``j + 1`` gets ``f = (1 − a) f_j + a f_{j+1}``. For independent input
    pixels its variance is therefore ``σ² = (1 − a)² σ_j² + a² σ_{j+1}²``
    (the weights squared), and ``ivar_out = 1 / σ²``.

    Correlations: output pixels that interpolate from a common input pixel
    share its noise (two outputs with weights ``w_j`` and ``w'_j`` on input
    ``j`` have covariance ``Σ_j w_j w'_j σ_j²``). Only the diagonal of the
    propagated covariance is returned; the correlations are ignored, because
    everything downstream (NMF weights, the χ²(z) scan) takes one independent
    weight per pixel and the diagonal is each output pixel's exact variance.
    The price: a χ² summed over output pixels counts shared input noise more
    than once, so it weighs the resampled data more than the input data
    warrant (most where the output grid is finer than the input: an
    interpolated pixel at ``a = ½`` between equal variances has half the
    input variance, although it holds no new information) and its number of
    degrees of freedom is not the number of output pixels.

    Outside the input coverage, and wherever a neighbouring input pixel has zero
    inverse variance, the output weight is zero (flux 0): missing, not "no signal".

    Parameters
    ----------
    loglam_in : ndarray, shape (n,)
        Input log10 λ, increasing.
    flux, ivar : ndarray, shape (n,)
        Input flux and inverse variance (0 = bad pixel), taken as independent
        between pixels.
    loglam_out : ndarray
        Output log10 λ.

    Returns
    -------
    flux_out, ivar_out : ndarray, shape ``loglam_out.shape``
    """
    loglam_in = np.asarray(loglam_in, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    n_in = loglam_in.size
    flux_out = np.zeros(loglam_out.shape, dtype=np.float64)
    ivar_out = np.zeros(loglam_out.shape, dtype=np.float64)
    if n_in < 2:
        return flux_out, ivar_out
    right = np.searchsorted(loglam_in, loglam_out, side="right")
    inside = (right > 0) & (right < n_in) | (loglam_out == loglam_in[-1])
    right = np.clip(right, 1, n_in - 1)
    left = right - 1
    span = loglam_in[right] - loglam_in[left]
    frac = np.where(span > 0, (loglam_out - loglam_in[left]) / np.where(span > 0, span, 1.0), 0.0)
    good = inside & (ivar[left] > 0) & ((ivar[right] > 0) | (frac == 0))
    flux_out[good] = (1 - frac[good]) * flux[left[good]] + frac[good] * flux[right[good]]
    variance = (1 - frac) ** 2 * _safe_inverse(ivar[left]) + frac**2 * _safe_inverse(ivar[right])
    ivar_out[good] = 1.0 / variance[good]
    return flux_out, ivar_out


def to_rest_frame(
    wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, z: float, grid: LogGrid
) -> tuple[np.ndarray, np.ndarray]:
    """De-redshift an observed spectrum onto ``grid`` (Bourahma et al. 2026, Eq. 4).

    f(log10 λ_rest) = ln10 · f_λ(λ_obs) · λ_obs with log10 λ_rest = log10 λ_obs − log10(1+z);
    the inverse variance is scaled by the square of the same factor, then the flux is
    linearly interpolated onto the grid and its variance propagated
    (:func:`resample_to_grid`); uncovered grid pixels get zero weight.

    Parameters
    ----------
    wavelength : ndarray, shape (n,)
        Observed wavelengths in Å, increasing.
    flux, ivar : ndarray, shape (n,)
        Flux density per Å and its inverse variance (0 = bad pixel).
    z : float
        Redshift of the source.
    grid : LogGrid
        Rest-frame grid.

    Returns
    -------
    flux_rest, ivar_rest : ndarray, shape (grid.n_pixels,)
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    factor = LN10 * wavelength
    loglam_rest = np.log10(wavelength) - math.log10(1.0 + z)
    return resample_to_grid(
        loglam_rest, np.asarray(flux, dtype=np.float64) * factor, np.asarray(ivar, dtype=np.float64) / factor**2, grid.loglam
    )


def _safe_inverse(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values)
    np.divide(1.0, values, out=out, where=values > 0)
    return out
