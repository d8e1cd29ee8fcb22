"""Observed spectra on the shared log-λ grid, grouped by the grid window they cover.

The fast scan works in the observed frame on the same log-λ grid as the
templates, in flux per unit log10 λ (seed 002, Eq. 4 with z = 0): a trial
redshift is then a pixel shift of the templates.

Each usable native pixel is placed, with its own flux and inverse variance,
on the grid pixel nearest its centre (at most half a grid step away: 0.18 Å
at 7000 Å on the default grid); the other grid pixels get zero weight. The
weighted sums over the grid are then sums over native pixels, so χ² values,
Δχ² and ``z_err`` are on the scale of the exhaustive reference (spreading a
pixel over the grid by interpolation would instead correlate neighbours and
smear lines narrower than a native pixel). The exact fits that refine each
minimum use the native pixels at their true positions. Two native pixels that
share a grid pixel (sampling finer than the grid, resolution above ~20 000)
are merged into their inverse-variance weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zstream.grid import LogGrid
from zstream.grid.loglam import LN10
from zstream.io.records import SpectrumBatch
from zstream.redshift.zwarning import ZWarning

WINDOW_ALIGN = 256
"""Windows are widened to multiples of this many pixels so spectra on nearly equal
wavelength ranges share one window (and one set of template transforms)."""


@dataclass
class PreparedSpectrum:
    """One spectrum on its grid window, plus the flags found while preparing it.

    Attributes
    ----------
    start : int
        First grid pixel of the window.
    flux : ndarray (length,), float64
        Flux per unit log10 λ (seed 002, Eq. 4 with z = 0) on the window; 0 where no pixel.
    weight : ndarray (length,), float64
        Its inverse variance; 0 where no usable pixel.
    position : ndarray (n_used,), float64
        Fractional grid index of each usable native pixel's centre.
    native_flux, native_weight : ndarray (n_used,), float64
        Flux per unit log10 λ and inverse variance of the usable native pixels.
    n_pixels_used : int
        Native pixels with finite flux and ivar > 0 inside the grid.
    warnings : ZWarning
    """

    start: int
    flux: np.ndarray
    weight: np.ndarray
    position: np.ndarray
    native_flux: np.ndarray
    native_weight: np.ndarray
    n_pixels_used: int
    warnings: ZWarning

    @property
    def usable(self) -> bool:
        """Whether anything can be fitted (some pixel has positive weight)."""
        return not self.warnings & ZWarning.ALL_MASKED

    def on_window(self, values: np.ndarray) -> np.ndarray:
        """Per-native-pixel ``values`` ``(n_used,)`` placed on the window ``(length,)`` like the flux."""
        return _place_on_window(self.position, self.start, self.native_weight, values, self.flux.size)


def prepare_spectrum(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, grid: LogGrid) -> PreparedSpectrum:
    """Mask bad pixels, flag problems and resample one observed spectrum onto its grid window.

    Parameters
    ----------
    wavelength : ndarray (n,)
        Observed wavelengths in Å, strictly increasing.
    flux, ivar : ndarray (n,)
        Flux density per Å and inverse variance (0 = bad pixel); NaN/inf are masked and flagged.
    grid : LogGrid
        The templates' grid.

    Returns
    -------
    PreparedSpectrum
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    warnings = ZWarning(0)
    finite = np.isfinite(flux) & np.isfinite(ivar)
    if not finite.all():
        warnings |= ZWarning.BAD_PIXELS_MASKED
    loglam = np.log10(wavelength)
    inside = (loglam >= grid.loglam[0]) & (loglam <= grid.loglam[-1])
    good = finite & (ivar > 0) & inside
    flux = np.where(good, flux, 0.0)
    ivar = np.where(good, ivar, 0.0)
    n_used = int(good.sum())
    if n_used < 0.5 * wavelength.size:
        warnings |= ZWarning.LITTLE_COVERAGE
    start, stop = _window(loglam, grid)
    if n_used == 0 or stop <= start:
        empty = np.zeros(0)
        return PreparedSpectrum(start, empty, empty, empty, empty, empty, n_used, warnings | ZWarning.ALL_MASKED)
    if np.median(flux[good]) < 0:
        warnings |= ZWarning.NEGATIVE_MEDIAN_FLUX
    factor = LN10 * wavelength[good]  # flux per Å → per log10 λ (Eq. 4)
    native_flux, native_weight = flux[good] * factor, ivar[good] / factor**2
    position = (loglam[good] - grid.log10_min) / grid.step
    weight = np.bincount(np.rint(position).astype(np.int64) - start, native_weight, minlength=stop - start)
    grid_flux = _place_on_window(position, start, native_weight, native_flux, stop - start)
    return PreparedSpectrum(start, grid_flux, weight, position, native_flux, native_weight, n_used, warnings)


def prepare_batch(batch: SpectrumBatch, grid: LogGrid) -> list[PreparedSpectrum]:
    """:func:`prepare_spectrum` for every spectrum of ``batch``, in order."""
    return [prepare_spectrum(w, f, v, grid) for w, f, v in zip(batch.wavelength, batch.flux, batch.ivar)]


def group_by_window(spectra: list[PreparedSpectrum]) -> dict[tuple[int, int], list[int]]:
    """Indices of the usable spectra, grouped by their window ``(start, length)``, in first-seen order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, spectrum in enumerate(spectra):
        if spectrum.usable:
            groups.setdefault((spectrum.start, spectrum.flux.size), []).append(index)
    return groups


def _place_on_window(
    position: np.ndarray, start: int, weight: np.ndarray, values: np.ndarray, length: int
) -> np.ndarray:
    """Put native-pixel values on their nearest grid pixels (weighted mean where two share one)."""
    pixel = np.rint(position).astype(np.int64) - start
    total = np.bincount(pixel, weight, minlength=length)
    weighted = np.bincount(pixel, weight * values, minlength=length)
    return np.divide(weighted, total, out=np.zeros(length), where=total > 0)


def _window(loglam: np.ndarray, grid: LogGrid) -> tuple[int, int]:
    """Aligned grid window ``[start, stop)`` holding the grid pixels nearest to every native pixel."""
    first = int(np.rint((loglam[0] - grid.log10_min) / grid.step))
    last = int(np.rint((loglam[-1] - grid.log10_min) / grid.step))
    start = max(0, first // WINDOW_ALIGN * WINDOW_ALIGN)
    stop = min(grid.n_pixels, -(-(last + 1) // WINDOW_ALIGN) * WINDOW_ALIGN)
    return start, stop
