"""From a χ²(z) curve to a redshift: exact refinement, z_err, Δχ² and robustness.

* Refinement: starting from the best integer pixel shift, χ² is evaluated exactly
  (float64, templates linearly interpolated at fractional shifts, exact NNLS)
  at the shift and its two neighbours, walking downhill until the middle one is
  lowest; a parabola through the three gives the sub-pixel minimum, and its
  curvature the 1σ error (χ² rises by 1).
* Δχ² = 1 − χ²_min / Q1(χ²) (Bourahma et al. 2026, Eq. 7), robustness
  R = (min⁽²⁾ − min⁽¹⁾) / σ_Q1 (Eq. 8), where σ_Q1 is the standard deviation of
  the χ² values at or below the first quartile and min⁽²⁾ is the exact χ² of the
  best rival candidate outside the confusion window of the best one, in any class
  (:mod:`zstream.redshift.candidates`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import scipy.optimize
import torch

from zstream.grid import LogGrid
from zstream.redshift.nnls import negligible_fraction
from zstream.redshift.observed import PreparedSpectrum

MAX_WALK = 8
"""Exact downhill steps allowed when the fast curve's best shift is not the exact minimum."""

CURVE_TIE = 1e-9
"""Relative difference below which two χ² curve points are the same value (float64 tables carry ~1e-12)."""


@dataclass
class ExactFit:
    """Exact non-negative fit at one fractional shift."""

    shift: float
    chi2: float
    coefficients: np.ndarray
    model: np.ndarray


@dataclass
class Refined:
    """Refined minimum of one spectrum's χ² curve.

    Attributes
    ----------
    shift : float
        Sub-pixel shift of the minimum.
    z, z_err : float
        Redshift and its 1σ error (NaN when the curvature is not positive).
    fit : ExactFit
        Exact fit at ``shift``.
    """

    shift: float
    z: float
    z_err: float
    fit: ExactFit


def shifted_templates(templates: np.ndarray, position: np.ndarray, shift: float) -> np.ndarray:
    """Templates moved redward by ``shift`` pixels, sampled at fractional grid ``position``.

    Linear interpolation between grid pixels (as the reference interpolates the basis);
    zero where the template grid does not reach.

    Parameters
    ----------
    templates : ndarray (k, n_pixels)
    position : ndarray (n,)
        Fractional grid index of each observed pixel (observed frame).
    shift : float

    Returns
    -------
    ndarray (k, n), float64
    """
    rest = position - shift
    left = np.floor(rest).astype(np.int64)
    frac = rest - left
    n_pixels = templates.shape[1]
    out = np.zeros((templates.shape[0], position.size))
    for index, factor in ((left, 1.0 - frac), (left + 1, frac)):
        ok = (index >= 0) & (index < n_pixels)
        out[:, ok] += templates[:, index[ok]] * factor[ok]
    return out


def exact_fit(
    templates: np.ndarray,
    spectrum: PreparedSpectrum,
    shift: float,
    reference_norm2: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> ExactFit:
    """Exact weighted NNLS fit of a spectrum's native pixels by templates at a fractional shift.

    Solved on the weighted design matrix itself (Lawson–Hanson, :func:`scipy.optimize.nnls`),
    not on its normal equations, whose condition number is the square of the design's. The
    spectrum's nuisance components are fitted with free sign, by projecting them off the design
    (the flux is already projected).

    Parameters
    ----------
    templates : ndarray (k, n_pixels), float64
    spectrum : PreparedSpectrum
    shift : float
        Pixel shift (redshift ``grid.z_of(shift)``).
    reference_norm2 : ndarray (k,), optional
        Largest weighted norm² of each template over the scan's shifts; a template below
        :func:`~zstream.redshift.nnls.negligible_fraction` of it is left out, as in the
        batched scan (default: only templates with no overlap at all).
    fixed : ndarray (n_used,), optional
        An extra non-negative component on the native pixels, already projected (the blend
        rescan's z1 model); its coefficient is ``coefficients[0]``.

    Returns
    -------
    ExactFit
        ``model`` (projected, native pixels, ``(n_used,)``) and ``coefficients`` ``(k,)``, or
        ``(k + 1,)`` with ``fixed`` first.
    """
    design = spectrum.project(shifted_templates(templates, spectrum.position, shift))
    root_weight = np.sqrt(spectrum.native_weight)
    norms2 = np.einsum("kn,kn->k", design * root_weight, design * root_weight)
    floor = 0.0 if reference_norm2 is None else negligible_fraction(torch.float64) * reference_norm2
    alive = norms2 > floor
    if fixed is not None:
        design = np.vstack([fixed, design])
        alive = np.concatenate([[bool(np.any(fixed))], alive])
    coefficients = np.zeros(design.shape[0])
    if alive.any():
        weighted = design[alive] * root_weight
        norms = np.sqrt(np.einsum("kn,kn->k", weighted, weighted))
        # unit-norm columns: templates tiny on this window keep their (large) coefficients
        solution, _ = scipy.optimize.nnls(
            (weighted / norms[:, None]).T, spectrum.native_flux * root_weight, maxiter=50 * design.shape[0]
        )
        coefficients[alive] = solution / norms
    model = coefficients @ design
    chi2 = float(np.sum(spectrum.native_weight * (spectrum.native_flux - model) ** 2))
    return ExactFit(shift, chi2, coefficients, model)


def refine_minimum(
    templates: np.ndarray,
    spectrum: PreparedSpectrum,
    best_shift: int,
    shift_bounds: tuple[float, float],
    grid: LogGrid,
    reference_norm2: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> Refined:
    """Sub-pixel minimum and 1σ error around an integer shift, with exact fits.

    Parameters
    ----------
    templates : ndarray (k, n_pixels), float64
    spectrum : PreparedSpectrum
    best_shift : int
        Best integer shift from the fast scan.
    shift_bounds : (float, float)
        Shifts of the first and last trial redshift; the minimum is kept inside.
    grid : LogGrid
    reference_norm2, fixed : ndarray, optional
        Passed to :func:`exact_fit`.

    Returns
    -------
    Refined
    """
    lo, hi = shift_bounds

    def fit(shift: float) -> ExactFit:
        return exact_fit(templates, spectrum, min(max(shift, lo), hi), reference_norm2, fixed)

    centre = fit(best_shift)
    left, right = fit(best_shift - 1), fit(best_shift + 1)
    for _ in range(MAX_WALK):
        if left.chi2 < centre.chi2 and left.chi2 <= right.chi2 and left.shift > lo:
            right, centre, left = centre, left, fit(left.shift - 1)
        elif right.chi2 < centre.chi2 and right.shift < hi:
            left, centre, right = centre, right, fit(right.shift + 1)
        else:
            break
    curvature = (left.chi2 - 2 * centre.chi2 + right.chi2) / 2  # χ² ≈ curvature · (s − s0)² + const
    best = centre
    z_err = math.nan
    if curvature > 0 and left.shift < centre.shift < right.shift:
        offset = (left.chi2 - right.chi2) / (4 * curvature)
        if abs(offset) < 1:
            candidate = fit(centre.shift + offset)
            if candidate.chi2 < best.chi2:
                best = candidate
        z_err = grid.step * math.log(10) * (1 + float(grid.z_of(best.shift))) / math.sqrt(curvature)
    return Refined(best.shift, float(grid.z_of(best.shift)), z_err, best)


@dataclass
class CurveScores:
    """Significance of the best minimum of a χ² curve (Bourahma et al. 2026, Eqs. 7–8)."""

    delta_chi2: float
    robustness: float


def local_minima(chi2: np.ndarray) -> np.ndarray:
    """Indices of the local minima of a curve (ends count when lower than their neighbour)."""
    padded = np.concatenate([[np.inf], chi2, [np.inf]])
    centre = padded[1:-1]
    is_min = (centre <= padded[:-2]) & (centre < padded[2:])
    return np.flatnonzero(is_min)


def outside_window(z: np.ndarray, z_best: float, window: float) -> np.ndarray:
    """Whether each redshift lies outside the confusion window ``|z − z_best| ≤ window·(1 + z_best)``."""
    return np.abs(z - z_best) > window * (1 + z_best)


def score_curve(chi2: np.ndarray, chi2_min: float, chi2_rival: float | None) -> CurveScores:
    """Δχ² and robustness of a solution against its χ² curves.

    Parameters
    ----------
    chi2 : ndarray (n_trials,)
        Every trial fit's χ² (all classes' curves together, so a star's short curve is not
        its own yardstick).
    chi2_min : float
        The (refined, exact) minimum χ².
    chi2_rival : float or None
        Exact χ² of the best rival candidate outside the confusion window (any class).

    Returns
    -------
    CurveScores
        ``robustness`` is NaN when there is no rival or σ_Q1 is 0.
    """
    q1 = float(np.percentile(chi2, 25))
    # χ²_min is an exact fit at least as good as the curve's best, so 0 ≤ Δχ² ≤ 1 up to rounding
    delta = min(1.0, max(0.0, 1.0 - chi2_min / q1)) if q1 > 0 else math.nan
    # ties within rounding count as ≤ Q1: a plateau of trials where no template overlaps (the
    # nuisance-only χ², equal up to the tables' last bits) often sits at Q1, and letting those bits
    # pick which of its points enter σ made robustness jump by several per cent between equal inputs
    sigma = float(np.std(chi2[chi2 <= q1 + CURVE_TIE * abs(q1)]))
    if chi2_rival is None or not sigma > 0:
        return CurveScores(delta, math.nan)
    return CurveScores(delta, (chi2_rival - chi2_min) / sigma)


def blend_score(chi2_blend: np.ndarray, z: np.ndarray, z_best: float, window: float) -> tuple[float, float | None]:
    """Best blend candidate in the rescan curve (Bourahma et al. 2026, Sect. 4.4d).

    Returns
    -------
    score : float
        Highest Δχ² = 1 − χ²₂(z_m) / Q1(χ²₂) over local minima ``z_m`` outside the confusion
        window of the best redshift (NaN when there is none).
    z_blend : float or None
        Redshift of that minimum.
    """
    q1 = float(np.percentile(chi2_blend, 25))
    minima = local_minima(chi2_blend)
    minima = minima[outside_window(z[minima], z_best, window)]
    if minima.size == 0 or q1 <= 0:
        return math.nan, None
    best = int(minima[np.argmin(chi2_blend[minima])])
    return 1.0 - float(chi2_blend[best]) / q1, float(z[best])
