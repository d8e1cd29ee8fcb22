"""Non-negative least squares from normal equations, batched over many small systems.

Each trial redshift of each spectrum is a k×k problem

    minimise  cᵀ A c − 2 bᵀ c   subject to  c ≥ 0

(the weighted fit of Eq. 5 of Bourahma et al. 2026 written with its normal equations). The
batched solver is block principal pivoting (Kim & Park 2011): solve the
unconstrained system on the current free set, then exchange every variable that
violates the KKT conditions at once, falling back to single exchanges when the
number of violations stops shrinking (which guarantees termination). Most
systems accept the first (unconstrained) solution; only the rest iterate.
The exact refinement of one system fits its design matrix directly
(:func:`zstream.redshift.fitz.exact_fit`).
"""

from __future__ import annotations

import torch

SOLVE_BLOCK = 16384
"""Systems factorised together: a k = 10 factor of this many systems (~3.5 MB float32) stays in cache."""

KKT_FLOOR = 1e-9
"""Smallest relative KKT tolerance: on nearly collinear templates the floored pivots leave gradient
errors of ~eps · condition number, which a tolerance of 1000 eps (2e-13) would call violations
forever, making convergence depend on the last bits of the input; 1e-9 of |b| moves χ² by nothing."""

PIVOT_NOISE = 1000
"""Gram elements carry absolute errors of ~this many eps times the largest element over all shifts
(FFT correlation, nuisance Schur complement); a Cholesky pivot below that is noise."""

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

    The batch axis is last, so every matrix element is one contiguous vector over the
    systems and the factorisation below is a few hundred vector operations per batch.
    Packed storage halves the memory traffic of scaling and compaction.

    Parameters
    ----------
    gram : Tensor (k (k + 1) / 2, m)
        Symmetric positive semi-definite matrices ``A``, packed: the upper triangle row by row
        (the order of ``torch.triu_indices(k, k)``), one column per system.
    rhs : Tensor (k, m)
        Right-hand sides ``b``.
    reference_diagonal : Tensor (k, m)
        Typical size of each diagonal element (e.g. its maximum over all shifts of the same
        spectrum); a variable whose diagonal is below working precision of this is fixed at 0,
        since its template has (numerically) no overlap with the spectrum.
    max_iter : int
        Exchange iterations before giving up on a system.
    initial_free : Tensor (k, m), bool, optional
        First guess of the variables that end up positive (a warm start: the solution of a
        similar system); default all of them (the unconstrained solution).

    Returns
    -------
    coefficients : Tensor (k, m)
        Non-negative solutions (the last iterate, clipped at 0, where not converged).
    converged : Tensor (m,), bool
        Whether the KKT conditions hold to working precision.
    """
    k, m = rhs.shape
    rows, cols = torch.triu_indices(k, k, device=rhs.device)
    diagonal = gram[rows == cols]  # (k, m)
    dead = diagonal <= negligible_fraction(gram.dtype) * reference_diagonal
    inv_scale = torch.where(dead, 0.0, torch.rsqrt(torch.where(dead, 1.0, diagonal)))
    # Jacobi scaling to unit diagonal keeps the float32 factorisation well conditioned.
    gram = gram * inv_scale[rows] * inv_scale[cols]
    rhs = rhs * inv_scale
    # The tables' errors scale with each template's largest overlap, so after scaling a variable
    # whose diagonal here is far below it carries relatively larger noise in its pivots.
    pivot_floor = PIVOT_NOISE * torch.finfo(gram.dtype).eps * (reference_diagonal * inv_scale**2).clamp_min(1.0)
    # KKT to working precision: free variables may be this far below 0, gradients this far below 0.
    precision = max(1000 * torch.finfo(rhs.dtype).eps, KKT_FLOOR)
    tolerance = precision * rhs.abs().amax(0)

    solution = torch.zeros_like(rhs)
    converged = torch.zeros(m, dtype=torch.bool, device=rhs.device)
    # Working state of the unsolved systems only, compacted after every iteration.
    index = torch.arange(m, device=rhs.device)
    alive = ~dead
    free = alive if initial_free is None else alive & initial_free
    best_violations = torch.full((m,), k + 1, device=rhs.device)
    full_left = torch.full((m,), FULL_EXCHANGES, device=rhs.device)
    for _ in range(max_iter):
        x = _solve_on_free_set(gram, rhs, free, pivot_floor)
        gradient = packed_matvec(gram, x) - rhs
        negative = x < -precision * x.abs().amax(0)
        violation = (free & negative) | (~free & alive & (gradient < -tolerance))
        count = violation.sum(0)
        solution.index_copy_(1, index, x.clamp_min(0))
        converged[index[count == 0]] = True
        keep = (count > 0).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        index, violation, count = index[keep], violation[:, keep], count[keep]
        gram = gram.index_select(1, keep)
        rhs, free, alive, tolerance = rhs[:, keep], free[:, keep], alive[:, keep], tolerance[keep]
        pivot_floor = pivot_floor[:, keep]
        fewer = count < best_violations[keep]
        best_violations = torch.where(fewer, count, best_violations[keep])
        full_left = torch.where(fewer, FULL_EXCHANGES, full_left[keep] - 1)
        last = k - 1 - violation.flip(0).to(torch.int8).argmax(0)  # highest violating index
        only_last = torch.zeros_like(violation)
        only_last[last, torch.arange(index.numel(), device=rhs.device)] = True
        free = free ^ torch.where((full_left < 0)[None, :], only_last, violation)
    return solution * inv_scale, converged


def packed_matvec(gram: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A x`` per column for packed symmetric ``A`` ``(k (k + 1) / 2, m)`` and ``x`` ``(k, m)``."""
    k = x.shape[0]
    out = torch.zeros_like(x)
    for i in range(k):
        for j in range(k):
            out[i].addcmul_(gram[_packed(i, j, k)], x[j])
    return out


def objective(gram: torch.Tensor, rhs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``xᵀ A x − 2 bᵀ x`` per column: χ² minus the data's energy, for any coefficients ``x``.

    Exact for the coefficients actually returned, whereas ``−bᵀx`` holds only where
    ``A_FF x_F = b_F`` exactly (a floored pivot or a cut-off iteration breaks that).
    """
    return (x * (packed_matvec(gram, x) - 2 * rhs)).sum(0)


def _solve_on_free_set(
    gram: torch.Tensor, rhs: torch.Tensor, free: torch.Tensor, pivot_floor: torch.Tensor
) -> torch.Tensor:
    """Solve ``A_FF x_F = b_F`` with ``x = 0`` off the free set, for every system at once.

    Works through the systems in blocks of ``SOLVE_BLOCK`` so the factor stays in cache.
    """
    blocks = [slice(s, s + SOLVE_BLOCK) for s in range(0, rhs.shape[1], SOLVE_BLOCK)]
    return torch.cat(
        [_cholesky_solve_block(gram[:, b], rhs[:, b], free[:, b], pivot_floor[:, b]) for b in blocks], dim=1
    )


def _cholesky_solve_block(
    gram: torch.Tensor, rhs: torch.Tensor, free: torch.Tensor, pivot_floor: torch.Tensor
) -> torch.Tensor:
    """:func:`_solve_on_free_set` for one block of systems.

    A Cholesky factorisation written element by element over the trailing batch axis (k ≈ 10:
    ~k³/6 fused multiply-adds on contiguous vectors), several times faster on a CPU than one
    LAPACK call per tiny matrix. Variables off the free set get a zero inverse pivot: their
    column of the factor, their forward value and their solution are then exactly 0 and they
    drop out of the free variables' equations, as if their rows and columns were removed.
    A variable whose pivot is below ``pivot_floor`` (a template that is, within the tables'
    noise, a combination of the free ones before it) is dropped the same way: clamping the
    pivot instead would give huge opposite coefficients on a numerically indefinite matrix,
    a χ² below the true minimum and exchanges that cycle forever.
    """
    k = rhs.shape[0]
    f = free.to(gram.dtype)
    lower: list[list[torch.Tensor | None]] = [[None] * k for _ in range(k)]
    inverse_pivot: list[torch.Tensor] = []
    for j in range(k):
        pivot = _minus_products(gram[_packed(j, j, k)], lower[j][:j], lower[j][:j])
        independent = pivot > pivot_floor[j]
        inverse_pivot.append(torch.where(independent, pivot, 1.0).rsqrt_().mul_(f[j] * independent))
        for i in range(j + 1, k):
            lower[i][j] = _minus_products(gram[_packed(j, i, k)], lower[i][:j], lower[j][:j]).mul_(inverse_pivot[j])
    forward: list[torch.Tensor] = []
    for j in range(k):
        forward.append(_minus_products(rhs[j], lower[j][:j], forward).mul_(inverse_pivot[j]))
    x: list[torch.Tensor | None] = [None] * k
    for j in reversed(range(k)):
        below = range(j + 1, k)
        x[j] = _minus_products(forward[j], [lower[i][j] for i in below], [x[i] for i in below]).mul_(inverse_pivot[j])
    return torch.stack(x)


def _packed(i: int, j: int, k: int) -> int:
    """Row of element ``(i, j)`` of a symmetric k×k matrix in packed upper-triangular storage."""
    i, j = min(i, j), max(i, j)
    return i * k - i * (i - 1) // 2 + (j - i)


def _minus_products(start: torch.Tensor, left: list, right: list) -> torch.Tensor:
    """``start − Σ_p left[p] · right[p]`` as a new tensor (``start`` is not modified)."""
    if not left:
        return start.clone()
    out = torch.addcmul(start, left[0], right[0], value=-1)
    for a, b in zip(left[1:], right[1:]):
        out.addcmul_(a, b, value=-1)
    return out


def negligible_fraction(dtype: torch.dtype) -> float:
    """Fraction of its largest weighted norm² below which a template counts as absent (per dtype).

    A template whose overlap with the spectrum at some shift is this small is only a numerical
    tail there (a sigmoid's 1e-8 wing, say); fitting it would take a huge coefficient, so the
    batched solver and the exact refinement both fix its coefficient at 0.
    """
    return 1e-6 if dtype == torch.float32 else 1e-8
