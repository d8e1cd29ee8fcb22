"""Exhaustive reference: the per-redshift loop of seed 002, written plainly.

For every trial redshift the basis is interpolated to the observed wavelengths
(rest log10 λ = log10 λ_obs − log10(1 + z)), converted to flux per Å (Eq. 4
inverted), and the spectrum is fitted by weighted NNLS (scipy.optimize.nnls);
χ² is the weighted sum of squared residuals over the native pixels (Eq. 6).
No FFTs, no batching, no shortcuts: this is what the fast path must agree with,
and the baseline of ``zstream bench scan``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from zstream.io.records import Basis


def design_matrix(basis: Basis, wavelength: np.ndarray, z: float) -> np.ndarray:
    """Templates at redshift ``z`` on observed wavelengths, in flux per Å.

    Parameters
    ----------
    basis : Basis
    wavelength : ndarray (n,)
        Observed wavelengths in Å.
    z : float

    Returns
    -------
    ndarray (n, k), float64
    """
    rest_loglam = np.log10(wavelength) - math.log10(1.0 + z)
    columns = [np.interp(rest_loglam, basis.grid.loglam, template, left=0.0, right=0.0) for template in basis.templates]
    return np.stack(columns, axis=1) / (math.log(10) * wavelength)[:, None]


def fit_at(
    basis: Basis, wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, z: float, extra: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted NNLS fit at one redshift (Eqs. 5–6), optionally with an extra fixed column.

    Parameters
    ----------
    basis : Basis
    wavelength, flux, ivar : ndarray (n,)
        Observed spectrum; pixels with ivar = 0, non-finite values or outside the basis grid's
        wavelength range are ignored (the same usable pixels as the fast path).
    z : float
    extra : ndarray (n,), optional
        An additional non-negative column (the blend rescan's best-fit model), placed first.

    Returns
    -------
    chi2 : float
    coefficients : ndarray (k,) or (k + 1,)
    """
    loglam = np.log10(wavelength)
    inside = (loglam >= basis.grid.loglam[0]) & (loglam <= basis.grid.loglam[-1])
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0) & inside
    design = design_matrix(basis, wavelength[good], z)
    if extra is not None:
        design = np.column_stack([extra[good], design])
    sigma_inverse = np.sqrt(ivar[good])
    coefficients, residual_norm = scipy.optimize.nnls(design * sigma_inverse[:, None], flux[good] * sigma_inverse)
    return float(residual_norm**2), coefficients


def chi2_curve(
    basis: Basis,
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    z_grid: np.ndarray,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """χ²(z) on the trial grid, one NNLS per trial redshift.

    Parameters
    ----------
    basis : Basis
    wavelength, flux, ivar : ndarray (n,)
    z_grid : ndarray (n_z,)
    extra : ndarray (n,), optional
        Fixed extra column (blend rescan).

    Returns
    -------
    ndarray (n_z,)
    """
    return np.array([fit_at(basis, wavelength, flux, ivar, z, extra)[0] for z in z_grid])


def best_fit_model(basis: Basis, wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, z: float) -> np.ndarray:
    """Best-fit model flux per Å at redshift ``z`` on all observed wavelengths, shape ``(n,)``."""
    _, coefficients = fit_at(basis, wavelength, flux, ivar, z)
    return design_matrix(basis, wavelength, z) @ coefficients


def scan_spectrum(
    basis: Basis, wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, z_grid: np.ndarray, blend: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The paper's full per-spectrum procedure: scan, then (optionally) the blend rescan.

    The blend rescan augments the basis at every trial redshift with the best-fit model at the
    scan's minimum (seed 002, Sect. 4.4 c).

    Returns
    -------
    chi2 : ndarray (n_z,)
    chi2_blend : ndarray (n_z,) or None
    """
    chi2 = chi2_curve(basis, wavelength, flux, ivar, z_grid)
    if not blend:
        return chi2, None
    model = best_fit_model(basis, wavelength, flux, ivar, float(z_grid[np.argmin(chi2)]))
    return chi2, chi2_curve(basis, wavelength, flux, ivar, z_grid, extra=model)
