"""Sky-subtraction residuals as a nuisance: their shapes, and the extra variance they bring.

A sky subtraction that is off by a small scale factor leaves a copy of the sky
lines; one off by a small wavelength shift leaves their derivative (the P-Cygni
pattern of MUSE residuals that ZAP removes as a low-rank component). When the
reduction provides the subtracted sky spectrum, these two shapes, taken from
its line part, are fitted with free sign beside the non-negative templates at
every trial redshift, and the variance at bright sky lines is inflated by the
expected residual, as DESI's pipeline does. Neither can be learned by a
template, so no redshift can be bought by fitting sky structure.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

CONTINUUM_WINDOW = 51
"""Pixels of the running median that separates the sky continuum from its lines (~60 Å at MUSE sampling)."""

DEFAULT_VARIANCE_FRACTION = 0.01
"""Sky-line residual RMS assumed for the variance, as a fraction of the sky-line flux (ZAP-level ~1 %)."""


def sky_lines(sky: np.ndarray) -> np.ndarray:
    """Line part of a sky spectrum: the spectrum minus its running median (same units and shape)."""
    sky = np.nan_to_num(np.asarray(sky, dtype=np.float64))
    return sky - scipy.ndimage.median_filter(sky, size=CONTINUUM_WINDOW, mode="nearest")


def residual_shapes(wavelength: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """The two sky-residual shapes of a spectrum: its sky lines and their derivative, ``(2, n)``."""
    lines = sky_lines(sky)
    return np.stack([lines, np.gradient(lines, np.asarray(wavelength, dtype=np.float64))])


def inflated_ivar(ivar: np.ndarray, sky: np.ndarray, fraction: float = DEFAULT_VARIANCE_FRACTION) -> np.ndarray:
    """Inverse variance with ``(fraction · sky lines)²`` added to the variance (0 stays 0)."""
    ivar = np.asarray(ivar, dtype=np.float64)
    extra = (fraction * sky_lines(sky)) ** 2
    out = np.zeros_like(ivar)
    good = ivar > 0
    out[good] = ivar[good] / (1.0 + ivar[good] * extra[good])
    return out


def orthonormal_nuisance(shapes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted-orthonormal basis ``Q`` of the span of ``shapes`` ``(j, n)``: ``Q W Qᵀ = I``.

    Shapes that are (numerically) zero or dependent on the others are dropped, so the result
    has between 0 and ``j`` rows.
    """
    if shapes.size == 0:
        return np.zeros((0, weight.size))
    root = np.sqrt(weight)
    u, singular, _ = np.linalg.svd((shapes * root).T, full_matrices=False)
    keep = singular > 1e-8 * max(float(singular.max(initial=0.0)), np.finfo(float).tiny)
    inverse_root = np.divide(1.0, root, out=np.zeros_like(root), where=root > 0)
    return (u[:, keep] * inverse_root[:, None]).T


def project_out(values: np.ndarray, nuisance: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``values`` ``(..., n)`` minus their weighted projection on the rows of orthonormal ``nuisance``.

    Fitting the nuisance with free sign and then the rest is the same as fitting the rest to
    projected data with projected templates (the Schur complement of the nuisance block).
    """
    if nuisance.shape[0] == 0:
        return values
    return values - (values * weight) @ nuisance.T @ nuisance


def remove_sky_residuals(
    wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, sky: np.ndarray | None,
    fraction: float = DEFAULT_VARIANCE_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """A training spectrum with its sky residuals fitted out and the variance at sky lines inflated.

    The scan fits the residual shapes beside the templates; a training spectrum, whose redshift is
    known, has them removed before it is de-redshifted, so no template can learn them.

    Returns
    -------
    flux, ivar : ndarray (n,), float64 (unchanged copies without a sky spectrum)
    """
    flux, ivar = np.asarray(flux, dtype=np.float64), np.asarray(ivar, dtype=np.float64)
    if sky is None:
        return flux.copy(), ivar.copy()
    ivar = inflated_ivar(ivar, sky, fraction)
    nuisance = orthonormal_nuisance(residual_shapes(wavelength, sky), ivar)
    return project_out(flux, nuisance, ivar), ivar
