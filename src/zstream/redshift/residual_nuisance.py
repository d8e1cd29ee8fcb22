"""Observed-frame nuisance shapes learned from the residuals of the training fits.

When the input carries no ``sky`` column there is no sky spectrum to build nuisance shapes
from, yet the reduction's sky-subtraction residuals are still in every spectrum, at the
same observed wavelengths. The training fits leave them in their residuals: shifted back
from the rest frame to the observed frame, those residuals add up coherently where the
reduction left structure, while astrophysical misfit, which moves with each spectrum's
redshift, spreads out. The leading components of a weighted low-rank fit of the
observed-frame residuals (the idea of ZAP, which removes MUSE sky residuals as a low-rank
observed-frame component) become nuisance shapes that the scan fits with free sign at every
trial redshift, as it does the shapes of a sky column.

The shapes live on the basis grid read as observed log10 λ (flux per unit log10 λ, as the
scan's spectra are), stored in the basis metadata as the covered span only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zstream.grid import LogGrid
from zstream.grid.loglam import LN10
from zstream.io.records import Basis

N_COMPONENTS = 2
"""Shapes kept (a sky column gives two too: its line residual and a wavelength-shift term)."""

MIN_SPECTRA = 50
"""Fewer training spectra without a sky column than this learn no shapes: too few to tell the
reduction's fixed-wavelength structure from the residuals of a handful of fits."""

ALS_ITERATIONS = 30
"""Alternating weighted least-squares passes per component (each is one pass over the residuals)."""

META_KEY = "residual_nuisance"
"""Basis metadata key of the learned shapes."""


@dataclass(frozen=True)
class ResidualShapes:
    """Nuisance shapes on ``grid`` read as observed log10 λ.

    Attributes
    ----------
    grid : LogGrid
    start : int
        Grid pixel of the first column of ``shapes``.
    shapes : ndarray (j, n)
        Per unit log10 λ, each scaled to unit peak.
    n_spectra : int
        Training spectra they were learned from.
    """

    grid: LogGrid
    start: int
    shapes: np.ndarray
    n_spectra: int

    def at(self, wavelength: np.ndarray) -> np.ndarray:
        """The shapes at observed wavelengths ``wavelength`` (Å), zero outside their span: ``(j, n)``."""
        loglam = self.grid.loglam[self.start : self.start + self.shapes.shape[1]]
        x = np.log10(np.asarray(wavelength, dtype=np.float64))
        return np.stack([np.interp(x, loglam, shape, left=0.0, right=0.0) for shape in self.shapes])

    def per_angstrom(self, wavelength: np.ndarray) -> np.ndarray:
        """:meth:`at` in flux per Å, for fits that work in the input's per-Å flux: ``(j, n)``."""
        wavelength = np.asarray(wavelength, dtype=np.float64)
        return self.at(wavelength) / (LN10 * wavelength)

    def to_meta(self) -> dict:
        """JSON-ready form for the basis metadata (four significant digits: shapes, not data)."""
        rounded = [[float(f"{value:.4g}") for value in shape] for shape in self.shapes]
        return {"start": self.start, "n_spectra": self.n_spectra, "shapes": rounded}

    @classmethod
    def of_basis(cls, basis: Basis) -> ResidualShapes | None:
        """The shapes stored under :data:`META_KEY` of ``basis``, or None when it has none."""
        meta = basis.meta.get(META_KEY)
        if not meta:
            return None
        shapes = np.asarray(meta["shapes"], dtype=np.float64).reshape(len(meta["shapes"]), -1)
        return cls(basis.grid, int(meta["start"]), shapes, int(meta["n_spectra"]))


def learn_residual_shapes(
    X: np.ndarray, V: np.ndarray, model: np.ndarray, z: np.ndarray, grid: LogGrid, n_components: int = N_COMPONENTS
) -> ResidualShapes | None:
    """Leading observed-frame components of the training fits' residuals.

    Parameters
    ----------
    X, V : ndarray (n, grid.n_pixels)
        Rest-frame training rows and their weights, as the NMF saw them (noise units).
    model : ndarray (n, grid.n_pixels)
        The fitted model of each row (coefficients × templates); NaN where none was learned.
    z : ndarray (n,)
        Each row's redshift.
    grid : LogGrid
    n_components : int

    Returns
    -------
    ResidualShapes or None
        None with fewer than :data:`MIN_SPECTRA` rows or no weighted residual.
    """
    if X.shape[0] < MIN_SPECTRA:
        return None
    learned = np.isfinite(model)
    residual, weight = _observed_frame(np.where(learned, X - model, 0.0), np.where(learned, V, 0.0), z, grid)
    covered = np.flatnonzero(weight.any(axis=0))
    if covered.size == 0:
        return None
    span = slice(int(covered[0]), int(covered[-1]) + 1)
    residual, weight = residual[:, span], weight[:, span]
    shapes = []
    for _ in range(n_components):
        amplitude, shape = _rank_one(residual, weight)
        residual = residual - np.outer(amplitude, shape)
        shapes.append(shape / np.max(np.abs(shape)))
    return ResidualShapes(grid, span.start, np.stack(shapes), int(X.shape[0]))


def _observed_frame(residual: np.ndarray, weight: np.ndarray, z: np.ndarray, grid: LogGrid):
    """Rest-frame rows moved to the observed frame: rest pixel p lands on p + log10(1+z)/step."""
    n_pixels = grid.n_pixels
    shifts = np.rint(np.log10(1.0 + np.asarray(z, dtype=np.float64)) / grid.step).astype(np.int64)
    observed = np.zeros(residual.shape, dtype=np.float64)
    observed_weight = np.zeros(residual.shape, dtype=np.float64)
    for row, shift in enumerate(shifts):
        if 0 <= shift < n_pixels:
            observed[row, shift:] = residual[row, : n_pixels - shift]
            observed_weight[row, shift:] = weight[row, : n_pixels - shift]
    return observed * (observed_weight > 0), observed_weight


def _rank_one(residual: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted rank-one fit ``residual ≈ a qᵀ`` by alternating least squares.

    Starts from the leading right singular vector of the whitened residuals, brought back to
    flux units by the typical noise per pixel; each pass solves the per-row amplitudes, then the
    per-pixel shape, exactly under the weights.
    """
    whitened = residual * np.sqrt(weight)
    _, _, vt = np.linalg.svd(whitened, full_matrices=False)
    typical = np.sqrt(np.mean(weight, axis=0))
    shape = np.divide(vt[0], typical, out=np.zeros_like(typical), where=typical > 0)
    amplitude = np.zeros(residual.shape[0])
    for _ in range(ALS_ITERATIONS):
        amplitude = _solve(residual, weight, shape, axis=1)
        shape = _solve(residual, weight, amplitude, axis=0)
    return amplitude, shape


def _solve(residual: np.ndarray, weight: np.ndarray, other: np.ndarray, axis: int) -> np.ndarray:
    """Weighted least-squares factor along ``axis`` given the other factor of a rank-one model."""
    fixed = other[None, :] if axis == 1 else other[:, None]
    numerator = np.sum(weight * fixed * residual, axis=axis)
    denominator = np.sum(weight * fixed**2, axis=axis)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
