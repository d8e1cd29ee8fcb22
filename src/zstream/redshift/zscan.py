"""χ² of the non-negative template fit at chosen pixel shifts, for a group of spectra.

:class:`ShiftTables` holds the normal equations of every spectrum at every pixel
shift of the scan range (computed by FFT in :mod:`zstream.redshift.correlate`);
:func:`solve_at_shifts` gathers the shifts asked for and solves all the small
non-negative problems at once (:func:`zstream.redshift.nnls.nnls_batched`).

Precision: for a bright or continuum-dominated spectrum χ² is a small difference
of large numbers (``Σwf² − 2cᵀb + cᵀAc`` with each term up to ~10⁶ times χ²),
which float32 tables and solves get wrong by thousands. Tables, solves and χ²
are therefore float64 (the spectra are in noise units, see
:mod:`zstream.redshift.observed`, so the numbers are well scaled), and χ² is
the exact quadratic at the returned coefficients
(:func:`~zstream.redshift.nnls.objective`): never below the true minimum, and
equal to it wherever the solver converged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from zstream.redshift.correlate import ShiftCorrelator
from zstream.redshift.nnls import nnls_batched, objective
from zstream.redshift.observed import PreparedSpectrum


@dataclass
class ShiftTables:
    """Normal equations of n spectra at every shift, indexed by lag ``shift_hi − shift``.

    Attributes
    ----------
    correlator : ShiftCorrelator
    spectra : list of PreparedSpectrum
        The n spectra (their native pixels feed the blend rescan).
    rhs : Tensor (n, k, n_shifts)
        ``b_k(s)`` by lag.
    gram : Tensor (n, n_pairs, n_shifts)
        ``A_kl(s)`` by lag, for the pairs of ``correlator.pairs`` (packed upper triangle).
    energy : Tensor (n,)
        ``Σ w f²``, the χ² of the zero model.
    """

    correlator: ShiftCorrelator
    spectra: list[PreparedSpectrum]
    rhs: torch.Tensor
    gram: torch.Tensor
    energy: torch.Tensor

    @classmethod
    def build(cls, correlator: ShiftCorrelator, spectra: list[PreparedSpectrum]) -> "ShiftTables":
        """Correlate the window signals of ``spectra`` (all on the correlator's window) with the templates.

        Nuisance components (free sign, observed frame) are eliminated exactly: with ``Q`` orthonormal
        under the weights and the flux already projected off it, the templates' normal matrix becomes
        the Schur complement ``A(s) − C(s) C(s)ᵀ`` with ``C_kj(s) = Σ w Q_j T_k(· − s)``, one more
        correlation per component.
        """
        signals = [s.gram_signals() for s in spectra]
        weighted_flux = [s.spread(s.native_weight * s.native_flux) for s in spectra]
        tables = cls(
            correlator,
            spectra,
            correlator.correlate_templates(_window_tensor(weighted_flux, correlator)),
            correlator.gram(
                _window_tensor([same for same, _ in signals], correlator),
                _window_tensor([neighbour for _, neighbour in signals], correlator),
            ),
            _per_spectrum([np.sum(s.native_weight * s.native_flux**2) for s in spectra], correlator),
        )
        tables._remove_nuisance()
        return tables

    def _remove_nuisance(self) -> None:
        """Replace ``A(s)`` by its Schur complement over each spectrum's nuisance components."""
        n_components = max(s.nuisance.shape[0] for s in self.spectra)
        rows, cols = self.correlator.pairs
        for j in range(n_components):
            values = [s.native_weight * s.nuisance[j] if j < s.nuisance.shape[0] else np.zeros_like(s.native_weight)
                      for s in self.spectra]
            cross = self.correlate_native(values)  # (n, k, n_shifts)
            self.gram -= cross[:, rows, :] * cross[:, cols, :]

    def correlate_native(self, values: list[np.ndarray]) -> torch.Tensor:
        """``Σ_i values_i T_k(p_i − s)`` for each spectrum, template and lag, from per-native-pixel values."""
        spread = [s.spread(v) for s, v in zip(self.spectra, values)]
        return self.correlator.correlate_templates(_window_tensor(spread, self.correlator))

    def packed_gram(self, lags: torch.Tensor) -> torch.Tensor:
        """``A(s)`` at ``lags`` ``(n, q)``, packed (upper triangle, row by row): ``(n_pairs, n·q)``."""
        return _gather(self.gram, lags)

    @cached_property
    def reference_norm2(self) -> torch.Tensor:
        """Largest ``A_kk(s)`` (weighted norm² of template k) over all shifts, per spectrum: ``(n, k)``.

        Computed once per table (a reduction over every shift), after the nuisance is removed.
        """
        rows, cols = self.correlator.pairs
        return self.gram[:, rows == cols, :].amax(2)

    def reference_diagonal(self, q: int) -> torch.Tensor:
        """:attr:`reference_norm2` repeated for q shifts per spectrum: ``(k, n·q)``."""
        return self.reference_norm2.T.repeat_interleave(q, dim=1)

    def rhs_at(self, lags: torch.Tensor) -> torch.Tensor:
        """``b(s)`` at ``lags`` ``(n, q)``: shape ``(k, n·q)``."""
        return _gather(self.rhs, lags)


WARM_START_STRIDE = 8
"""Every this many shifts is solved cold first; the others start from the nearest one's free set."""


def solve_at_shifts(tables: ShiftTables, lags: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
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
    chi2 : Tensor (n, q), float64
    converged : Tensor (n, q), bool
    """
    n, q = lags.shape
    gram, rhs = tables.packed_gram(lags), tables.rhs_at(lags)
    coefficients, converged = _solve_warm(gram, rhs, tables.reference_diagonal(q), n, max_iter)
    chi2 = tables.energy[:, None] + objective(gram, rhs, coefficients).reshape(n, q)
    return chi2, converged.reshape(n, q)


def solve_blend_at_shifts(
    tables: ShiftTables, models: list[np.ndarray], lags: torch.Tensor, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-negative fits with the basis augmented by a fixed model (the blend rescan, Bourahma et al. 2026, Sect. 4.4c).

    The fixed model ``m`` (best fit at z1) is component 0, the shifted templates follow; its
    cross terms with the templates ``Σ w m T_k(· − s)`` are one more correlation per spectrum.

    Parameters
    ----------
    tables : ShiftTables
    models : list of ndarray (n_used,)
        Each spectrum's fixed component on its native pixels (flux per log10 λ, noise units).
    lags : Tensor (n, q), long
    max_iter : int

    Returns
    -------
    chi2 : Tensor (n, q), float64
    converged : Tensor (n, q), bool
    """
    n, q = lags.shape
    spectra = tables.spectra
    cross = _gather(tables.correlate_native([s.native_weight * m for s, m in zip(spectra, models)]), lags)

    def repeated(values: list[float]) -> torch.Tensor:
        return _per_spectrum(values, tables.correlator).repeat_interleave(q)

    model_gram = repeated([np.sum(s.native_weight * m * m) for s, m in zip(spectra, models)])
    model_rhs = repeated([np.sum(s.native_weight * m * s.native_flux) for s, m in zip(spectra, models)])
    # packed upper triangle of the (k+1)×(k+1) matrix: row 0 (the model) first, then the templates'
    gram = torch.cat([model_gram[None], cross, tables.packed_gram(lags)])
    rhs = torch.cat([model_rhs[None], tables.rhs_at(lags)])
    reference = torch.cat([model_gram[None], tables.reference_diagonal(q)])
    model_only = torch.zeros(rhs.shape[0], dtype=torch.bool, device=rhs.device)
    model_only[0] = True  # at most redshifts few templates improve on the z1 fit alone
    coefficients, converged = _solve_warm(gram, rhs, reference, n, max_iter, cold_free=model_only)
    chi2 = tables.energy[:, None] + objective(gram, rhs, coefficients).reshape(n, q)
    return chi2, converged.reshape(n, q)


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


def _window_tensor(rows: list[np.ndarray], correlator: ShiftCorrelator) -> torch.Tensor:
    """Stack per-spectrum window signals into an ``(n, length)`` tensor of the working dtype and device."""
    return torch.as_tensor(np.stack(rows), dtype=correlator.dtype, device=correlator.device)


def _per_spectrum(values: list[float], correlator: ShiftCorrelator) -> torch.Tensor:
    """Per-spectrum float64 sums as an ``(n,)`` tensor of the working dtype and device."""
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=correlator.dtype, device=correlator.device)


def _gather(table: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """``table`` (n, r, n_shifts) at ``lags`` (n, q) → (r, n·q), spectrum-major columns."""
    n, r, _ = table.shape
    picked = table.gather(2, lags[:, None, :].expand(n, r, lags.shape[1]))
    return picked.permute(1, 0, 2).reshape(r, -1)
