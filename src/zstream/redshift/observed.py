"""Observed spectra on the shared log-λ grid, grouped by the grid window they cover.

The fast scan works in the observed frame on the same log-λ grid as the
templates, in flux per unit log10 λ (Bourahma et al. 2026, Eq. 4 with z = 0): a trial
redshift is then a pixel shift of the templates.

A native pixel sits at a fractional grid position ``p = n + a``; the reference
(and the paper) interpolate the templates linearly there, so at an integer
shift s its model is ``(1 − a)·T[n − s] + a·T[n + 1 − s]``, a fixed blend of
two grid pixels whatever s is. Spreading each pixel's ``w f`` over ``n`` and
``n + 1`` with weights ``1 − a`` and ``a`` (the transpose of that
interpolation) therefore gives the reference's ``b_k(s)`` exactly, and its
normal matrix follows from two window signals: ``U`` (``w (1−a)²`` at n plus
``w a²`` at n + 1) against the template products ``T_k T_l``, and ``V``
(``w a (1−a)`` at n) against ``T_k[j] T_l[j+1] + T_k[j+1] T_l[j]``. The scan
is then the reference's χ² on the native pixels, at integer pixel shifts.

Units: each spectrum is divided by its median per-pixel noise σ (and its
inverse variance multiplied by σ²), so the fit sees flux in units of the noise
and weights near 1 whatever units the reduction system uses. χ² is unchanged
by this, coefficients scale back by ``scale``; nothing downstream depends on
the scale of flux and ivar, and float32 never over- or underflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zstream.grid import LogGrid
from zstream.grid.loglam import LN10
from zstream.io.records import SpectrumBatch
from zstream.redshift.residual_nuisance import ResidualShapes
from zstream.redshift.skylines import (DEFAULT_VARIANCE_FRACTION, inflated_ivar, orthonormal_nuisance, project_out,
                                       residual_shapes)
from zstream.redshift.zwarning import ZWarning

WINDOW_ALIGN = 256
"""Windows are widened to multiples of this many pixels so spectra on nearly equal
wavelength ranges share one window (and one set of template transforms)."""


@dataclass
class PreparedSpectrum:
    """One spectrum's usable native pixels on the grid, plus the flags found while preparing it.

    Attributes
    ----------
    start, length : int
        Window: grid pixels ``start … start + length − 1`` (holding every ``n`` and ``n + 1``).
    position : ndarray (n_used,), float64
        Fractional grid index of each usable native pixel's centre.
    native_flux, native_weight : ndarray (n_used,), float64
        Flux per unit log10 λ and inverse variance of those pixels, in noise units: divided by
        (flux) and multiplied by the square of (weight) ``scale``.
    scale : float
        Median noise σ of the usable pixels in the caller's flux-per-log10-λ units; a model
        or coefficient fitted to ``native_flux`` times ``scale`` is in the caller's units.
    n_pixels_used : int
        Native pixels with finite flux and ivar > 0 inside the grid.
    warnings : ZWarning
    nuisance : ndarray (j, n_used), float64
        Observed-frame nuisance shapes (sky residuals, :mod:`~zstream.redshift.skylines`), orthonormal
        under ``native_weight``; ``native_flux`` has already been projected off them, and templates
        must be too (:meth:`project`). ``j = 0`` without a sky spectrum.
    """

    start: int
    length: int
    position: np.ndarray
    native_flux: np.ndarray
    native_weight: np.ndarray
    scale: float
    n_pixels_used: int
    warnings: ZWarning
    nuisance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def usable(self) -> bool:
        """Whether anything can be fitted."""
        return not self.warnings & ZWarning.ALL_MASKED

    def project(self, values: np.ndarray) -> np.ndarray:
        """Per-native-pixel ``values`` ``(..., n_used)`` with their nuisance part removed."""
        return project_out(values, self.nuisance, self.native_weight)

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Per-native-pixel ``values`` ``(n_used,)`` spread linearly onto the window ``(length,)``.

        The transpose of interpolating the grid at the native positions:
        ``Σ_g spread(v)_g T[g − s]`` is ``Σ_i v_i T(p_i − s)`` with ``T`` linearly interpolated.
        """
        left, frac = self._cells()
        return np.bincount(left, values * (1 - frac), self.length) + np.bincount(left + 1, values * frac, self.length)

    def gram_signals(self) -> tuple[np.ndarray, np.ndarray]:
        """Window signals ``U`` and ``V`` of the normal matrix (module docstring), each ``(length,)``."""
        left, frac = self._cells()
        w = self.native_weight
        same = np.bincount(left, w * (1 - frac) ** 2, self.length) + np.bincount(left + 1, w * frac**2, self.length)
        return same, np.bincount(left, w * frac * (1 - frac), self.length)

    def _cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Window index of the grid pixel left of each native pixel, and the fraction ``a`` beyond it."""
        left = np.minimum(np.floor(self.position).astype(np.int64) - self.start, self.length - 2)
        return left, self.position - self.start - left  # a pixel on the grid's last point gets a = 0 there


def prepare_spectrum(
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    grid: LogGrid,
    sky: np.ndarray | None = None,
    sky_variance_fraction: float = DEFAULT_VARIANCE_FRACTION,
    learned_shapes: ResidualShapes | None = None,
) -> PreparedSpectrum:
    """Mask bad pixels, flag problems and place one observed spectrum on its grid window.

    Parameters
    ----------
    wavelength : ndarray (n,)
        Observed wavelengths in Å, strictly increasing.
    flux, ivar : ndarray (n,)
        Flux density per Å and inverse variance (0 = bad pixel); NaN/inf are masked and flagged.
    grid : LogGrid
        The templates' grid.
    sky : ndarray (n,), optional
        The subtracted sky spectrum (flux per Å). Its residual shapes become the nuisance
        components and its lines inflate the variance.
    sky_variance_fraction : float
        Sky-line residual RMS assumed for the variance, as a fraction of the sky-line flux.
    learned_shapes : ResidualShapes, optional
        Observed-frame shapes learned from the training residuals (the basis's), the nuisance
        components of a spectrum without a sky spectrum.

    Returns
    -------
    PreparedSpectrum
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if sky is not None:
        ivar = inflated_ivar(np.where(np.isfinite(ivar), ivar, 0.0), sky, sky_variance_fraction)
    warnings = ZWarning(0)
    finite = np.isfinite(flux) & np.isfinite(ivar)
    if not finite.all():
        warnings |= ZWarning.BAD_PIXELS_MASKED
    loglam = np.log10(wavelength)
    good = finite & (ivar > 0) & (loglam >= grid.loglam[0]) & (loglam <= grid.loglam[-1])
    n_used = int(good.sum())
    if n_used < 0.5 * wavelength.size:
        warnings |= ZWarning.LITTLE_COVERAGE
    if n_used == 0:
        empty = np.zeros(0)
        return PreparedSpectrum(0, 0, empty, empty, empty, 1.0, n_used, warnings | ZWarning.ALL_MASKED)
    if np.median(flux[good]) < 0:
        warnings |= ZWarning.NEGATIVE_MEDIAN_FLUX
    factor = LN10 * wavelength[good]  # flux per Å → per log10 λ (Eq. 4)
    flux_per_loglam, sigma = flux[good] * factor, factor / np.sqrt(ivar[good])
    scale = float(np.median(sigma))
    position = (loglam[good] - grid.log10_min) / grid.step
    start, stop = _window(position, grid)
    weight = (scale / sigma) ** 2
    if sky is not None:
        shapes = residual_shapes(wavelength, sky)[:, good] * factor
    elif learned_shapes is not None:
        shapes = learned_shapes.at(wavelength[good])  # already per unit log10 λ
    else:
        shapes = np.zeros((0, n_used))
    nuisance = orthonormal_nuisance(shapes, weight)
    return PreparedSpectrum(
        start, stop - start, position, project_out(flux_per_loglam / scale, nuisance, weight), weight, scale, n_used,
        warnings, nuisance,
    )


def prepare_batch(
    batch: SpectrumBatch,
    grid: LogGrid,
    sky_variance_fraction: float = DEFAULT_VARIANCE_FRACTION,
    learned_shapes: ResidualShapes | None = None,
) -> list[PreparedSpectrum]:
    """:func:`prepare_spectrum` for every spectrum of ``batch``, in order, with its ``sky`` column if any
    and ``learned_shapes`` where it has none."""
    skies = sky_column(batch)
    return [
        prepare_spectrum(w, f, v, grid, sky, sky_variance_fraction, learned_shapes)
        for w, f, v, sky in zip(batch.wavelength, batch.flux, batch.ivar, skies)
    ]


def sky_column(batch: SpectrumBatch) -> list[np.ndarray | None]:
    """Each spectrum's subtracted sky spectrum from the optional ``sky`` pass-through column.

    None where it is absent, null, not a list of numbers or not as long as the spectrum: the sky
    is an aid to the fit, and a malformed one is ignored rather than failing the spectrum.
    """
    if batch.extra is None or "sky" not in batch.extra.column_names:
        return [None] * len(batch)
    return [_as_sky(sky, len(wavelength)) for sky, wavelength in zip(batch.extra.column("sky").to_pylist(), batch.wavelength)]


def _as_sky(values: object, n: int) -> np.ndarray | None:
    try:
        sky = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return sky if sky.shape == (n,) else None

def group_by_window(spectra: list[PreparedSpectrum]) -> dict[tuple[int, int], list[int]]:
    """Indices of the usable spectra, grouped by their window ``(start, length)``, in first-seen order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, spectrum in enumerate(spectra):
        if spectrum.usable:
            groups.setdefault((spectrum.start, spectrum.length), []).append(index)
    return groups


def _window(position: np.ndarray, grid: LogGrid) -> tuple[int, int]:
    """Aligned grid window ``[start, stop)`` holding the grid pixels either side of every native pixel."""
    first, last = int(np.floor(position[0])), int(np.floor(position[-1])) + 1
    start = max(0, first // WINDOW_ALIGN * WINDOW_ALIGN)
    stop = min(grid.n_pixels, -(-(last + 1) // WINDOW_ALIGN) * WINDOW_ALIGN)
    return start, max(stop, start + 2)
