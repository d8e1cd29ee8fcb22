"""χ² of the non-negative template fit at chosen pixel shifts, for a group of spectra.

:class:`ShiftTables` holds the normal equations of every spectrum at every pixel
shift of the scan range (computed by FFT in :mod:`zstream.redshift.correlate`);
:func:`solve_at_shifts` gathers the shifts asked for and solves all the small
non-negative problems at once (:func:`zstream.redshift.nnls.nnls_batched`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zstream.redshift.correlate import ShiftCorrelator
from zstream.redshift.nnls import nnls_batched


@dataclass
class ShiftTables:
    """Normal equations of n spectra at every shift, indexed by lag ``shift_hi − shift``.

    Attributes
    ----------
    correlator : ShiftCorrelator
    flux, weight : Tensor (n, length)
        Window flux (per log10 λ) and χ² weights.
    rhs : Tensor (n, k, n_shifts)
        ``b_k(s)`` by lag.
    gram : Tensor (n, n_pairs, n_shifts)
        ``A_kl(s)`` by lag, for the pairs of ``correlator.pairs``.
    energy : Tensor (n,)
        ``Σ w f²``, the χ² of the zero model.
    """

    correlator: ShiftCorrelator
    flux: torch.Tensor
    weight: torch.Tensor
    rhs: torch.Tensor
    gram: torch.Tensor
    energy: torch.Tensor

    @classmethod
    def build(cls, correlator: ShiftCorrelator, flux: torch.Tensor, weight: torch.Tensor) -> "ShiftTables":
        """Correlate the spectra ``flux``, ``weight`` (each ``(n, length)``) with the templates."""
        weighted_flux = weight * flux
        return cls(
            correlator,
            flux,
            weight,
            correlator.rhs(weighted_flux),
            correlator.gram(weight),
            _row_sums(weighted_flux * flux),
        )

    def packed_gram(self, lags: torch.Tensor) -> torch.Tensor:
        """``A(s)`` at ``lags`` ``(n, q)``, packed (upper triangle, row by row): ``(n_pairs, n·q)``."""
        return _gather(self.gram, lags)

    def reference_diagonal(self, q: int) -> torch.Tensor:
        """Largest ``A_kk(s)`` over all shifts, per spectrum and template, repeated for q shifts: ``(k, n·q)``."""
        rows, cols = self.correlator.pairs
        diagonal = self.gram[:, rows == cols, :].amax(2)  # (n, k)
        return diagonal.T.repeat_interleave(q, dim=1)

    def rhs_at(self, lags: torch.Tensor) -> torch.Tensor:
        """``b(s)`` at ``lags`` ``(n, q)``: shape ``(k, n·q)``."""
        return _gather(self.rhs, lags)


WARM_START_STRIDE = 8
"""Every this many shifts is solved cold first; the others start from the nearest one's free set."""


def solve_at_shifts(
    tables: ShiftTables, lags: torch.Tensor, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Non-negative fits at the given shifts.

    Neighbouring shifts have nearly the same set of positive coefficients, so a sparse subset
    is solved first and its free sets warm-start all the others (most then need one solve).

    Parameters
    ----------
    tables : ShiftTables
    lags : Tensor (n, q), long
        Lags (``correlator.lag_of(shift)``) per spectrum.
    max_iter : int
        Iteration limit of the batched NNLS.

    Returns
    -------
    chi2 : Tensor (n, q)
    coefficients : Tensor (n, k, q)
    converged : Tensor (n, q), bool
    """
    n, q = lags.shape
    coefficients, converged = _solve_warm(
        tables.packed_gram(lags), tables.rhs_at(lags), tables.reference_diagonal(q), n, max_iter
    )
    explained = (coefficients * tables.rhs_at(lags)).sum(0).reshape(n, q)
    chi2 = tables.energy[:, None] - explained  # at the optimum cᵀAc = cᵀb
    return chi2, _ungather(coefficients, n, q), converged.reshape(n, q)


def solve_blend_at_shifts(
    tables: ShiftTables,
    model: torch.Tensor,
    lags: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-negative fits with the basis augmented by a fixed model (the blend rescan, seed 002 Sect. 4.4c).

    The fixed model ``m`` (best fit at z1) is component 0, the shifted templates follow. χ² is
    expanded around the feasible point ``c* = (1, 0, …, 0)`` (the z1 fit itself),
    ``χ²(c) = χ²(c*) + 2 (c − c*)·g* + (c − c*)ᵀ A (c − c*)`` with ``g*`` from the correlation of the
    residual ``f − m``; unlike ``Σwf² − cᵀb`` this has no cancellation in float32, and the blend
    curve differs from χ²(c*) by only ~1 %.

    Parameters
    ----------
    tables : ShiftTables
    model : Tensor (n, length)
        The fixed component on the window.
    lags : Tensor (n, q), long

    Returns
    -------
    chi2 : Tensor (n, q)
    converged : Tensor (n, q), bool
    """
    n, q = lags.shape
    k = tables.correlator.k
    weight = tables.weight
    residual = tables.flux - model
    residual_gradient = -_gather(tables.correlator.correlate_templates(weight * residual), lags)  # g*_k (k, M)
    rhs_templates = tables.rhs_at(lags)
    model_gram = _repeat(_row_sums(weight * model * model), q)
    model_rhs = _repeat(_row_sums(weight * model * tables.flux), q)
    model_gradient = _repeat(-_row_sums(weight * residual * model), q)
    cross = rhs_templates + residual_gradient  # Σ w m T_k = Σ w f T_k − Σ w r T_k

    # packed upper triangle of the (k+1)×(k+1) matrix: row 0 (the model) first, then the templates'
    gram = torch.cat([model_gram[None], cross, tables.packed_gram(lags)])
    rhs = torch.cat([model_rhs[None], rhs_templates])
    reference = torch.cat([model_gram[None], tables.reference_diagonal(q)])
    model_only = torch.zeros(k + 1, dtype=torch.bool, device=rhs.device)
    model_only[0] = True  # at most redshifts few templates improve on the z1 fit alone
    coefficients, converged = _solve_warm(gram, rhs, reference, n, max_iter, cold_free=model_only)

    step = coefficients.clone()
    step[0] -= 1.0
    gradient = torch.cat([model_gradient[None], residual_gradient])
    rows, cols = torch.triu_indices(k + 1, k + 1, device=gram.device)
    off_diagonal = torch.where(rows == cols, 1.0, 2.0).to(gram.dtype)[:, None]
    curvature = (gram * step[rows] * step[cols] * off_diagonal).sum(0)
    residual_energy = _repeat(_row_sums(weight * residual * residual), q)
    chi2 = residual_energy + 2 * (step * gradient).sum(0) + curvature
    return chi2.reshape(n, q), converged.reshape(n, q)


def _solve_warm(
    gram: torch.Tensor,
    rhs: torch.Tensor,
    reference: torch.Tensor,
    n: int,
    max_iter: int,
    cold_free: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`nnls_batched` on n spectra × q shifts (columns spectrum-major), warm-started.

    Every ``WARM_START_STRIDE``-th shift is solved from ``cold_free`` (``(k,)`` bool; default
    all free); the free set of the nearest one starts all the others.
    """
    k, m = rhs.shape
    q = m // n
    initial_free = None
    if q > 2 * WARM_START_STRIDE:
        def sparse(values: torch.Tensor) -> torch.Tensor:
            return values.reshape(*values.shape[:-1], n, q)[..., ::WARM_START_STRIDE].flatten(-2)

        n_sparse = (q - 1) // WARM_START_STRIDE + 1
        start = None if cold_free is None else cold_free[:, None].expand(k, n * n_sparse)
        coarse, _ = nnls_batched(sparse(gram), sparse(rhs), sparse(reference), max_iter, start)
        nearest = ((torch.arange(q, device=rhs.device) + WARM_START_STRIDE // 2) // WARM_START_STRIDE).clamp_max(
            n_sparse - 1
        )
        initial_free = (coarse.reshape(k, n, n_sparse) > 0)[:, :, nearest].reshape(k, m)
    return nnls_batched(gram, rhs, reference, max_iter, initial_free)


def _row_sums(values: torch.Tensor) -> torch.Tensor:
    """Sum of each row of (n, length), row by row so the rounding cannot depend on n."""
    return torch.stack([row.sum() for row in values])


def _gather(table: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """``table`` (n, r, n_shifts) at ``lags`` (n, q) → (r, n·q), spectrum-major columns."""
    n, r, _ = table.shape
    picked = table.gather(2, lags[:, None, :].expand(n, r, lags.shape[1]))
    return picked.permute(1, 0, 2).reshape(r, -1)


def _ungather(values: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """Inverse layout of :func:`_gather`: (r, n·q) → (n, r, q)."""
    return values.reshape(values.shape[0], n, q).permute(1, 0, 2)


def _repeat(per_spectrum: torch.Tensor, q: int) -> torch.Tensor:
    """(n,) → (n·q,), each value repeated for the spectrum's q shifts."""
    return per_spectrum.repeat_interleave(q)
