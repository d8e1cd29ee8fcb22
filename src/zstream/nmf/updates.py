"""The multiplicative update rules, one function per rule, in the package's orientation.

Notation: the paper (seed 001) factorises X (d×n) ≈ W H with templates W (d×q)
and coefficients H (q×n). Here X is (n, p), coefficients C = Hᵀ (n, k) and
templates T = Wᵀ (k, p), so X ≈ C T, Wᵀ(V∘X) ↔ (V∘X) Tᵀ and (V∘X) Hᵀ ↔ Cᵀ(V∘X).

All three methods share one form. With g the data projection and q the model
projection of the rule, the update is ``value ∘ (g + s) / (q + s)`` where s is
the shift that makes the numerator non-negative:

* ``nearly`` — Eqs. 18/19: s = [g]⁻, the per-element, per-iteration minimum
  (so g + s = [g]⁺);
* ``shift`` — Eqs. 7/8 with X' = X + y: s = y·(V Tᵀ) or y·(Cᵀ V);
* ``clip`` — weighted NMF of Blanton & Roweis on X clipped at 0: s = 0.

Where a denominator is 0 (a spectrum or pixel with no weight at all) the
value is left unchanged, so missing data never produce NaN.
"""

from __future__ import annotations

import torch

from zstream.nmf.chunks import Chunk
from zstream.nmf.smoothness import neighbour_count, neighbour_sum


def multiplicative_step(values: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Return ``values ∘ numerator / denominator``, keeping ``values`` where the denominator is 0."""
    ratio = torch.where(denominator > 0, numerator / denominator, torch.ones_like(numerator))
    return values * ratio


def data_shift(projection: torch.Tensor, method: str, shift: float, weight_projection) -> torch.Tensor | float:
    """Return the shift term s added to numerator and denominator of an update.

    Parameters
    ----------
    projection : Tensor
        g = (V∘X) Tᵀ (n, k) for coefficients or Cᵀ(V∘X) (k, p) for templates.
    method : str
    shift : float
        Scalar y of Shift-NMF (ignored by the other methods).
    weight_projection : callable
        Returns V Tᵀ or Cᵀ V, only evaluated for ``method="shift"``.
    """
    if method == "nearly":
        return projection.clamp(max=0).neg_()
    if method == "shift":
        return shift * weight_projection()
    return 0.0


def update_coefficients(coefficients: torch.Tensor, templates: torch.Tensor, chunk: Chunk,
                        method: str, shift: float) -> torch.Tensor:
    """Coefficient rule (paper's H update, Eq. 18 nearly / Eq. 7 shift) for one block of spectra.

    Parameters
    ----------
    coefficients : Tensor (n_rows, k)
    templates : Tensor (k, n_pixels)
    chunk : Chunk
        The block's flux, ivar and V∘X.
    method : str
    shift : float

    Returns
    -------
    Tensor (n_rows, k)
        Updated, non-negative coefficients.
    """
    weighted_model = (coefficients @ templates).mul_(chunk.ivar)
    projection = chunk.weighted_flux @ templates.T
    model_projection = weighted_model @ templates.T
    offset = data_shift(projection, method, shift, lambda: chunk.ivar @ templates.T)
    return multiplicative_step(coefficients, projection + offset, model_projection + offset)


def update_templates(templates: torch.Tensor, projection: torch.Tensor, model_projection: torch.Tensor,
                     weight_projection: torch.Tensor | None, method: str, shift: float,
                     smoothness: float) -> torch.Tensor:
    """Template rule (paper's W update, Eq. 19 nearly / Eq. 8 shift) plus the smoothness terms.

    The sums over spectra are accumulated block by block beforehand
    (``TemplateSums``), so the ± split of Eq. 19 is taken on the full sum.

    With a smoothness penalty λ‖T Dᵀ‖² and DᵀD = Λ − N (``smoothness``), the rule is::

        T ← T ∘ (g + s + 2λ T N) / (q + s + λ (T Λ + T N))

    Why this still decreases χ² + λ‖T Dᵀ‖² monotonically: for one template row
    t the penalty is λ tᵀ(Λ − N)t. For any t̃ > 0 and any vector x, writing
    x = t̃ ∘ r, ``Σ_j (N t̃)_j x_j² / t̃_j + xᵀ N x = ½ Σ_ij N_ij t̃_i t̃_j (r_i + r_j)² ≥ 0``,
    so M = Λ + diag(N t̃ / t̃) satisfies M ⪰ Λ − N. Hence
    ``P(t) ≤ P(t̃) + 2λ((Λ − N)t̃)ᵀ(t − t̃) + λ (t − t̃)ᵀ M (t − t̃)``, a majoriser
    that touches P at t̃ and whose Hessian is diagonal. Adding it to the
    Nearly-NMF auxiliary function of the data term (Appendix B, Eq. 27, whose
    gradient is −2[g]⁺ + 2([g]⁻ + q) ∘ t / t̃) gives a convex separable auxiliary
    function; setting its gradient to zero gives exactly the rule above, so each
    step cannot increase the penalised objective. The same argument holds for
    the shift and clip data terms. At a fixed point numerator = denominator,
    i.e. g − q − λ T(Λ − N) = 0: the penalised KKT condition.

    Parameters
    ----------
    templates : Tensor (k, n_pixels)
    projection : Tensor (k, n_pixels)
        g = Cᵀ(V∘X) summed over all spectra.
    model_projection : Tensor (k, n_pixels)
        q = Cᵀ(V∘(C T)) summed over all spectra.
    weight_projection : Tensor (k, n_pixels) or None
        Cᵀ V summed over all spectra (Shift-NMF only).
    method : str
    shift : float
    smoothness : float
        λ ≥ 0.

    Returns
    -------
    Tensor (k, n_pixels)
    """
    offset = data_shift(projection, method, shift, lambda: weight_projection)
    numerator = projection + offset
    denominator = model_projection + offset
    if smoothness:
        neighbours = neighbour_sum(templates)
        numerator += 2 * smoothness * neighbours
        denominator += smoothness * (templates * neighbour_count(templates.shape[1], templates) + neighbours)
    return multiplicative_step(templates, numerator, denominator)


class TemplateSums:
    """Running sums over spectra of the terms of the template rule, filled block by block.

    Parameters
    ----------
    k, n_pixels : int
    with_weights : bool
        Also accumulate Cᵀ V (needed by Shift-NMF).
    like : Tensor
        Gives device and dtype.
    """

    def __init__(self, k: int, n_pixels: int, with_weights: bool, like: torch.Tensor):
        def zeros():
            return torch.zeros((k, n_pixels), dtype=like.dtype, device=like.device)

        self.projection = zeros()
        self.model_projection = zeros()
        self.weight_projection = zeros() if with_weights else None

    def add(self, coefficients: torch.Tensor, weighted_model: torch.Tensor, chunk: Chunk) -> None:
        """Add one block's Cᵀ(V∘X), Cᵀ(V∘(C T)) and, for Shift-NMF, Cᵀ V."""
        self.projection.addmm_(coefficients.T, chunk.weighted_flux)
        self.model_projection.addmm_(coefficients.T, weighted_model)
        if self.weight_projection is not None:
            self.weight_projection.addmm_(coefficients.T, chunk.ivar)
