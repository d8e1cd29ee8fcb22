"""Non-negative least squares from normal equations, batched over many small systems.

Each trial redshift of each spectrum is a k×k problem

    minimise  cᵀ A c − 2 bᵀ c   subject to  c ≥ 0

(the weighted fit of Eq. 5 of seed 002 written with its normal equations). The
batched solver is block principal pivoting (Kim & Park 2011): solve the
unconstrained system on the current free set, then exchange every variable that
violates the KKT conditions at once, falling back to single exchanges when the
number of violations stops shrinking (which guarantees termination). Most
systems accept the first (unconstrained) solution; only the rest iterate.
Exact float64 solves for a single system use :func:`scipy.optimize.nnls`.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

FULL_EXCHANGES = 3
"""Consecutive full exchanges allowed without fewer violations before single exchanges (Kim & Park's p)."""


def nnls_batched(
    gram: torch.Tensor, rhs: torch.Tensor, reference_diagonal: torch.Tensor, max_iter: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve many small NNLS problems given by their normal equations.

    Parameters
    ----------
    gram : Tensor (k, k, m)
        Symmetric positive semi-definite matrices ``A``, one per column index.
    rhs : Tensor (k, m)
        Right-hand sides ``b``.
    reference_diagonal : Tensor (k, m)
        Typical size of each diagonal element (e.g. its maximum over all shifts of the same
        spectrum); a variable whose diagonal is below working precision of this is fixed at 0,
        since its template has (numerically) no overlap with the spectrum.
    max_iter : int
        Exchange iterations before giving up on a system.

    Returns
    -------
    coefficients : Tensor (k, m)
        Non-negative solutions (the last iterate where not converged, clipped at 0).
    converged : Tensor (m,), bool
        Whether the KKT conditions hold to working precision.
    """
    k, m = rhs.shape
    diagonal = torch.diagonal(gram).T  # (k, m)
    dead = diagonal <= _tiny(gram.dtype) * reference_diagonal
    scale = torch.sqrt(diagonal.clamp_min(0))
    inv_scale = torch.where(dead, 0.0, 1.0 / torch.where(dead, 1.0, scale))
    # Jacobi scaling to unit diagonal keeps the float32 factorisation well conditioned.
    gram = gram * inv_scale[:, None] * inv_scale[None, :]
    rhs = rhs * inv_scale
    tolerance = 10 * torch.finfo(rhs.dtype).eps * rhs.abs().amax(0).clamp_min(torch.finfo(rhs.dtype).tiny)

    solution = torch.zeros_like(rhs)
    converged = torch.zeros(m, dtype=torch.bool, device=rhs.device)
    # Working state of the unsolved systems only, compacted after every iteration.
    index = torch.arange(m, device=rhs.device)
    free, alive = ~dead, ~dead
    best_violations = torch.full((m,), k + 1, device=rhs.device)
    full_left = torch.full((m,), FULL_EXCHANGES, device=rhs.device)
    for _ in range(max_iter):
        x = _solve_on_free_set(gram, rhs, free)
        y = (gram * x[None, :, :]).sum(1) - rhs  # elementwise: identical whatever the batch size
        violation = (free & (x < 0)) | (~free & alive & (y < -tolerance))
        count = violation.sum(0)
        done = count == 0
        solution[:, index[done]] = x[:, done]
        converged[index[done]] = True
        keep = ~done
        if not keep.any():
            break
        index, x, violation, count = index[keep], x[:, keep], violation[:, keep], count[keep]
        gram, rhs, free, alive, tolerance = gram[:, :, keep], rhs[:, keep], free[:, keep], alive[:, keep], tolerance[keep]
        best_violations, full_left = best_violations[keep], full_left[keep]
        solution[:, index] = x.clamp_min(0)
        fewer = count < best_violations
        best_violations = torch.where(fewer, count, best_violations)
        full_left = torch.where(fewer, FULL_EXCHANGES, full_left - 1)
        last = k - 1 - violation.flip(0).to(torch.int8).argmax(0)  # highest violating index
        only_last = torch.zeros_like(violation)
        only_last[last, torch.arange(index.numel(), device=rhs.device)] = True
        free = free ^ torch.where((full_left < 0)[None, :], only_last, violation)
    return solution * inv_scale, converged


def _solve_on_free_set(gram: torch.Tensor, rhs: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """Solve ``A_FF x_F = b_F`` with ``x = 0`` off the free set, by a column-wise batched Cholesky.

    Written with elementwise operations over the trailing batch axis: for k ≈ 10 this is much
    faster than per-matrix LAPACK calls. Pivots are floored at a tiny positive value, which acts
    as a minimal ridge on (nearly) collinear templates.
    """
    k = rhs.shape[0]
    f = free.to(gram.dtype)
    matrix = gram * f[:, None] * f[None, :]
    floor = _tiny(gram.dtype)
    lower = torch.zeros_like(matrix)
    for j in range(k):
        pivot = matrix[j, j] - (lower[j, :j] ** 2).sum(0)
        pivot = torch.where(free[j], pivot.clamp_min(floor), torch.ones_like(pivot))
        lower[j, j] = torch.sqrt(pivot)
        if j + 1 < k:
            below = matrix[j + 1 :, j] - (lower[j + 1 :, :j] * lower[j, :j]).sum(1)
            lower[j + 1 :, j] = below / lower[j, j]
    z = torch.zeros_like(rhs)
    b = rhs * f
    for j in range(k):
        z[j] = (b[j] - (lower[j, :j] * z[:j]).sum(0)) / lower[j, j]
    x = torch.zeros_like(rhs)
    for j in reversed(range(k)):
        x[j] = (z[j] - (lower[j + 1 :, j] * x[j + 1 :]).sum(0)) / lower[j, j]
    return x * f


def nnls_exact(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Exact NNLS for one system in float64: ``argmin_{c ≥ 0} cᵀAc − 2bᵀc``.

    The normal equations are turned back into a least-squares problem ``‖R c − d‖`` with
    ``RᵀR = A`` (eigen-decomposition, so singular ``A`` is fine) and handed to scipy's
    Lawson–Hanson solver.

    Parameters
    ----------
    gram : ndarray (k, k)
    rhs : ndarray (k,)

    Returns
    -------
    ndarray (k,)
    """
    scale = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    alive = scale > 0
    coefficients = np.zeros_like(rhs)
    if not alive.any():
        return coefficients
    inverse = 1.0 / scale[alive]
    # Jacobi scaling first, so templates that are tiny on this window keep their (large) coefficients.
    values, vectors = np.linalg.eigh(gram[np.ix_(alive, alive)] * inverse[:, None] * inverse[None, :])
    keep = values > values.max() * 1e-14
    root = np.sqrt(values[keep])
    design = root[:, None] * vectors[:, keep].T
    target = (vectors[:, keep].T @ (rhs[alive] * inverse)) / root
    solution, _ = scipy.optimize.nnls(design, target, maxiter=50 * gram.shape[0])
    coefficients[alive] = solution * inverse
    return coefficients


def _tiny(dtype: torch.dtype) -> float:
    """Relative size below which a pivot or diagonal counts as zero for ``dtype``."""
    return 1e-5 if dtype == torch.float32 else 1e-12
