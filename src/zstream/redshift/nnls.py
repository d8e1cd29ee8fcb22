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
    gram: torch.Tensor,
    rhs: torch.Tensor,
    reference_diagonal: torch.Tensor,
    max_iter: int = 50,
    initial_free: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve many small NNLS problems given by their normal equations.

    Parameters
    ----------
    gram : Tensor (m, k, k)
        Symmetric positive semi-definite matrices ``A``.
    rhs : Tensor (m, k)
        Right-hand sides ``b``.
    reference_diagonal : Tensor (m, k)
        Typical size of each diagonal element (e.g. its maximum over all shifts of the same
        spectrum); a variable whose diagonal is below working precision of this is fixed at 0,
        since its template has (numerically) no overlap with the spectrum.
    max_iter : int
        Exchange iterations before giving up on a system.
    initial_free : Tensor (m, k), bool, optional
        First guess of the variables that end up positive (a warm start: the solution of a
        similar system); default all of them (the unconstrained solution).

    Returns
    -------
    coefficients : Tensor (m, k)
        Non-negative solutions (the last iterate, clipped at 0, where not converged).
    converged : Tensor (m,), bool
        Whether the KKT conditions hold to working precision.
    """
    m, k = rhs.shape
    diagonal = torch.diagonal(gram, dim1=1, dim2=2)
    dead = diagonal <= _tiny(gram.dtype) * reference_diagonal
    inv_scale = torch.where(dead, 0.0, torch.rsqrt(torch.where(dead, 1.0, diagonal)))
    # Jacobi scaling to unit diagonal keeps the float32 solves well conditioned.
    gram = gram * (inv_scale[:, :, None] * inv_scale[:, None, :])
    rhs = rhs * inv_scale
    # KKT to working precision: free variables may be this far below 0, gradients this far below 0.
    precision = 1000 * torch.finfo(rhs.dtype).eps
    tolerance = precision * rhs.abs().amax(1, keepdim=True)

    solution = torch.zeros_like(rhs)
    converged = torch.zeros(m, dtype=torch.bool, device=rhs.device)
    # Working state of the unsolved systems only, compacted after every iteration.
    index = torch.arange(m, device=rhs.device)
    alive = ~dead
    free = alive if initial_free is None else alive & initial_free
    best_violations = torch.full((m,), k + 1, device=rhs.device)
    full_left = torch.full((m,), FULL_EXCHANGES, device=rhs.device)
    for _ in range(max_iter):
        x = _solve_on_free_set(gram, rhs, free)
        gradient = torch.bmm(gram, x[:, :, None])[:, :, 0] - rhs
        negative = x < -precision * x.abs().amax(1, keepdim=True)
        violation = (free & negative) | (~free & alive & (gradient < -tolerance))
        count = violation.sum(1)
        solution.index_copy_(0, index, x.clamp_min(0))
        converged.index_fill_(0, index[count == 0], True)
        keep = (count > 0).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        index, violation, count = index[keep], violation[keep], count[keep]
        gram, rhs, free, alive, tolerance = gram[keep], rhs[keep], free[keep], alive[keep], tolerance[keep]
        fewer = count < best_violations[keep]
        best_violations = torch.where(fewer, count, best_violations[keep])
        full_left = torch.where(fewer, FULL_EXCHANGES, full_left[keep] - 1)
        last = k - 1 - violation.flip(1).to(torch.int8).argmax(1)  # highest violating index
        only_last = torch.zeros_like(violation)
        only_last[torch.arange(index.numel(), device=rhs.device), last] = True
        free = free ^ torch.where((full_left < 0)[:, None], only_last, violation)
    return solution * inv_scale, converged


def _solve_on_free_set(gram: torch.Tensor, rhs: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """Solve ``A_FF x_F = b_F`` with ``x = 0`` off the free set, for every system at once.

    Rows and columns off the free set are replaced by the identity so one batched LAPACK
    call solves all systems whatever their free sets. A ridge at working precision keeps
    (nearly) collinear templates solvable.
    """
    f = free.to(gram.dtype)
    matrix = gram * (f[:, :, None] * f[:, None, :])
    matrix.diagonal(dim1=1, dim2=2).add_(1 - f + 100 * torch.finfo(gram.dtype).eps)
    x, _ = torch.linalg.solve_ex(matrix, rhs * f)
    return torch.nan_to_num(x * f, nan=0.0, posinf=0.0, neginf=0.0)


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
    return 1e-4 if dtype == torch.float32 else 1e-12
