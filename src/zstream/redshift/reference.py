"""Exhaustive reference: the per-redshift loop of Bourahma et al. 2026, written plainly.

For every trial redshift the basis is interpolated to the observed wavelengths
(rest log10 λ = log10 λ_obs − log10(1 + z)), converted to flux per Å (Eq. 4
inverted), and the spectrum is fitted by weighted NNLS (scipy.optimize.nnls);
χ² is the weighted sum of squared residuals over the native pixels (Eq. 6).
:func:`scan_spectrum` does the same work as the scanner: every class of the
basis on its own trial grid, the sky-residual shapes as free-sign columns (each
a ± pair of non-negative ones) with the sky-line variance inflation, and the
blend rescan. No FFTs, no batching, no shortcuts: this is what the fast path
must agree with, and the baseline of ``zstream bench scan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from zstream.io.records import Basis
from zstream.redshift.classes import DEFAULT_CLASS, class_blocks
from zstream.redshift.config import ScanConfig
from zstream.redshift.residual_nuisance import ResidualShapes
from zstream.redshift.skylines import inflated_ivar, residual_shapes


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
    # the templates are piecewise linear and fall to zero one grid step beyond each end, as in the scanner
    grid = basis.grid
    knots = np.concatenate([[grid.loglam[0] - grid.step], grid.loglam, [grid.loglam[-1] + grid.step]])
    columns = [np.interp(rest_loglam, knots, np.concatenate([[0.0], t, [0.0]])) for t in basis.templates]
    return np.stack(columns, axis=1) / (math.log(10) * wavelength)[:, None]


def fit_at(
    basis: Basis,
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    z: float,
    extra: np.ndarray | None = None,
    nuisance: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Weighted NNLS fit at one redshift (Eqs. 5–6), optionally with an extra column and nuisance shapes.

    Parameters
    ----------
    basis : Basis
    wavelength, flux, ivar : ndarray (n,)
        Observed spectrum; pixels with ivar = 0, non-finite values or outside the basis grid's
        wavelength range are ignored (the same usable pixels as the fast path).
    z : float
    extra : ndarray (n,), optional
        An additional non-negative column (the blend rescan's best-fit model), placed first.
    nuisance : ndarray (j, n), optional
        Observed-frame shapes fitted with free sign (sky residuals).

    Returns
    -------
    chi2 : float
    coefficients : ndarray (k,) or (k + 1,)
        The non-negative coefficients (the nuisance ones are left out).
    """
    loglam = np.log10(wavelength)
    inside = (loglam >= basis.grid.loglam[0]) & (loglam <= basis.grid.loglam[-1])
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0) & inside
    design = design_matrix(basis, wavelength[good], z)
    if extra is not None:
        design = np.column_stack([extra[good], design])
    n_positive = design.shape[1]
    if nuisance is not None:
        design = np.column_stack([design, nuisance[:, good].T, -nuisance[:, good].T])
    sigma_inverse = np.sqrt(ivar[good])
    coefficients, residual_norm = scipy.optimize.nnls(design * sigma_inverse[:, None], flux[good] * sigma_inverse)
    return float(residual_norm**2), coefficients[:n_positive]


def chi2_curve(
    basis: Basis,
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    z_grid: np.ndarray,
    extra: np.ndarray | None = None,
    nuisance: np.ndarray | None = None,
) -> np.ndarray:
    """χ²(z) on the trial grid, one NNLS per trial redshift.

    Parameters
    ----------
    basis : Basis
    wavelength, flux, ivar : ndarray (n,)
    z_grid : ndarray (n_z,)
    extra : ndarray (n,), optional
        Fixed extra column (blend rescan).
    nuisance : ndarray (j, n), optional
        Free-sign shapes (sky residuals).

    Returns
    -------
    ndarray (n_z,)
    """
    return np.array([fit_at(basis, wavelength, flux, ivar, z, extra, nuisance)[0] for z in z_grid])


@dataclass
class ReferenceScan:
    """The exhaustive scan of one spectrum.

    Attributes
    ----------
    z, chi2 : dict of str to ndarray
        Each class's trial redshifts and χ²(z) curve.
    spectype : str
        Class of the lowest χ² over all curves, at redshift ``z_best``.
    z_best : float
    chi2_blend : ndarray or None
        The blend rescan on the galaxy class's grid (the first class without galaxies).
    """

    z: dict[str, np.ndarray]
    chi2: dict[str, np.ndarray]
    spectype: str
    z_best: float
    chi2_blend: np.ndarray | None


def scan_spectrum(
    basis: Basis,
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    config: ScanConfig,
    sky: np.ndarray | None = None,
    z_model: float | None = None,
) -> ReferenceScan:
    """The full per-spectrum procedure, one exhaustive fit per class and trial redshift.

    Every class is scanned on the scanner's trial redshifts (``ScanConfig.trial_shifts``);
    with ``sky``, its residual shapes are free-sign columns and its lines inflate the variance;
    without, so are the shapes the basis learned from its training residuals, if any.
    The blend rescan augments the galaxy templates at every trial redshift with the best-fit
    model at the overall minimum (Bourahma et al. 2026, Sect. 4.4 c), or at ``z_model`` (the
    scanner fixes its refined fit, so pass its ``z`` to compare the two rescans).
    """
    nuisance = None
    learned = ResidualShapes.of_basis(basis)
    if sky is not None:
        ivar = inflated_ivar(np.asarray(ivar, dtype=np.float64), sky, config.sky_variance_fraction)
        nuisance = residual_shapes(wavelength, sky)
    elif learned is not None:
        nuisance = learned.per_angstrom(wavelength)
    blocks = {name: Basis(basis.templates[rows], basis.grid, basis.version) for name, rows in class_blocks(basis).items()}
    z = {name: basis.grid.z_of(config.trial_shifts(basis.grid, name)) for name in blocks}
    chi2 = {name: chi2_curve(blocks[name], wavelength, flux, ivar, z[name], nuisance=nuisance) for name in blocks}
    spectype = min(chi2, key=lambda name: chi2[name].min())
    z_best = float(z[spectype][np.argmin(chi2[spectype])])
    chi2_blend = None
    if config.blend:
        z_fixed = z_best if z_model is None else z_model
        _, coefficients = fit_at(blocks[spectype], wavelength, flux, ivar, z_fixed, nuisance=nuisance)
        model = design_matrix(blocks[spectype], wavelength, z_fixed) @ coefficients
        rescan = DEFAULT_CLASS if DEFAULT_CLASS in blocks else next(iter(blocks))
        chi2_blend = chi2_curve(blocks[rescan], wavelength, flux, ivar, z[rescan], extra=model, nuisance=nuisance)
    return ReferenceScan(z, chi2, spectype, z_best, chi2_blend)
