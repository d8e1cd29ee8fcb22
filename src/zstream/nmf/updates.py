"""The multiplicative update rules, one function per rule, in the package's orientation.

Notation: the paper (Green & Bailey 2023, "Algorithms for Non-Negative Matrix
Factorization on Noisy Data With Negative Values") factorises X (d×n) ≈ W H
with templates W (d×q) and coefficients H (q×n). Here X is (n, p), coefficients C = Hᵀ (n, k) and
templates T = Wᵀ (k, p), so X ≈ C T, Wᵀ(V∘X) ↔ (V∘X) Tᵀ and (V∘X) Hᵀ ↔ Cᵀ(V∘X).

All three methods share one form. With g the data projection and q the model
projection of the rule, the update is ``value ∘ (g + s) / (q + s)`` where s is
the shift that makes the numerator non-negative:

* ``nearly`` — Eqs. 18/19: s = [g]⁻, the per-element, per-iteration minimum
  (so g + s = [g]⁺);
* ``shift`` — Eqs. 7/8 with X' = X + y: s = y·(V Tᵀ) or y·(Cᵀ V);
* ``clip`` — the earlier weighted NMF (the paper's ref. [9]) on X clipped at 0: s = 0.

Where a denominator is 0 (a spectrum or pixel with no weight at all) the
value is left unchanged, so missing data never produce NaN; the step itself is
evaluated in float64 so that float32 denominators that underflow cannot
overflow the ratio (``multiplicative_step``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from zstream.nmf.chunks import Chunk
from zstream.nmf.smoothness import neighbour_count, neighbour_sum


def multiplicative_step(values: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Return ``values ∘ numerator / denominator``, keeping ``values`` where the denominator is 0.

    Evaluated in float64 and rounded back once. In float32 a denominator can
    underflow to a subnormal (e.g. ~1e-42: a Gram cross term of near-zero
    coefficients at a pixel few spectra cover) while the numerator is normal;
    the float32 ratio then overflows to inf, and an entry already at 0 becomes
    0 · inf = NaN. The float64 ratio of float32 numbers is always finite, so 0
    stays 0 and every other entry gets its correctly rounded update.
    """
    wide = torch.promote_types(values.dtype, torch.float64)
    ratio = numerator.to(wide) / denominator.to(wide)
    step = values.to(wide) * torch.where(denominator > 0, ratio, 1.0)
    return step.to(values.dtype)


def data_shift(projection: torch.Tensor, method: str, shift: float,
               weight_projection: torch.Tensor | None) -> torch.Tensor | float:
    """Return the shift term s added to numerator and denominator of an update.

    Parameters
    ----------
    projection : Tensor
        g = (V∘X) Tᵀ (n, k) for coefficients or Cᵀ(V∘X) (k, p) for templates.
    method : str
    shift : float
        Scalar y of Shift-NMF (ignored by the other methods).
    weight_projection : Tensor or None
        V Tᵀ or Cᵀ V, same shape as ``projection``; used by ``method="shift"`` only.
    """
    if method == "nearly":
        return projection.clamp(max=0).neg_()
    if method == "shift":
        return shift * weight_projection
    return 0.0


@functools.lru_cache(maxsize=None)
def _pair_indices(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the rows (k ≤ l) of the k(k+1)/2 distinct pairs, and for each of the k² entries its pair.

    Built once per (k, device): the loop asks for them for every block of spectra.
    """
    upper = torch.triu_indices(k, k, device=device)
    index = torch.zeros((k, k), dtype=torch.long, device=device)
    index[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    return upper[0], upper[1], torch.maximum(index, index.T).reshape(-1)


def pair_products(factors: torch.Tensor) -> torch.Tensor:
    """Return the distinct products f_k f_l (k <= l) of the rows of ``factors`` (k, m), shape (k(k+1)/2, m).

    The Gram terms are symmetric in (k, l), so only these products are needed;
    ``unpack_pairs`` restores the full (k, k) layout.
    """
    first, second, _ = _pair_indices(factors.shape[0], factors.device)
    return factors[first] * factors[second]


def unpack_pairs(pairs: torch.Tensor, k: int) -> torch.Tensor:
    """Expand (..., k(k+1)/2) distinct pair sums from ``pair_products`` to symmetric (..., k, k)."""
    _, _, index = _pair_indices(k, pairs.device)
    return pairs[..., index].reshape(*pairs.shape[:-1], k, k)


@dataclass
class CoefficientTerms:
    """Per-spectrum sums over pixels that the coefficient rule and χ² need, for fixed templates.

    Attributes
    ----------
    projection : Tensor (n_rows, k)
        g = (V∘X) Tᵀ.
    gram : Tensor (n_rows, k, k)
        G_i = T diag(V_i) Tᵀ, so that (V∘(C T)) Tᵀ row i = G_i c_i.
    weight_projection : Tensor (n_rows, k) or None
        V Tᵀ (Shift-NMF only).
    """

    projection: torch.Tensor
    gram: torch.Tensor
    weight_projection: torch.Tensor | None


def template_products(templates: torch.Tensor, with_weights: bool) -> torch.Tensor:
    """Return the rows multiplied into V for the Gram terms: T_k T_l (k <= l), then T itself for Shift-NMF.

    Shape (m, n_pixels) with m = k(k+1)/2 (+ k), zero-padded to a multiple of
    16 rows: CPU GEMM with few output columns is up to 2x faster then (measured, MKL).
    Computed once per pass, shared by every block.
    """
    k = templates.shape[0]
    n_pairs = k * (k + 1) // 2
    n_used = n_pairs + (k if with_weights else 0)
    products = templates.new_zeros((-(-n_used // 16) * 16, templates.shape[1]))
    products[:n_pairs] = pair_products(templates)
    if with_weights:
        products[n_pairs:n_used] = templates
    return products


def coefficient_terms(templates: torch.Tensor, products: torch.Tensor, chunk: Chunk,
                      with_weights: bool) -> CoefficientTerms:
    """Compute g, G (and V Tᵀ) for one block: two reads of the block, no (n, p) temporaries.

    Parameters
    ----------
    templates : Tensor (k, n_pixels)
    products : Tensor (m, n_pixels)
        ``template_products(templates, with_weights)``.
    chunk : Chunk
    with_weights : bool
        Also return V Tᵀ (Shift-NMF).
    """
    k = templates.shape[0]
    n_pairs = k * (k + 1) // 2
    weighted = chunk.ivar @ products.T
    gram = unpack_pairs(weighted[:, :n_pairs], k)
    return CoefficientTerms(chunk.weighted_flux @ templates.T, gram,
                            weighted[:, n_pairs:n_pairs + k] if with_weights else None)


def model_projection_of(coefficients: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Return (V∘(C T)) Tᵀ, shape (n_rows, k), as G_i c_i — the same sum regrouped."""
    return torch.einsum("ikl,il->ik", gram, coefficients)


def update_coefficients(coefficients: torch.Tensor, terms: CoefficientTerms, method: str,
                        shift: float) -> torch.Tensor:
    """Coefficient rule (paper's H update, Eq. 18 nearly / Eq. 7 shift) for one block of spectra.

    Parameters
    ----------
    coefficients : Tensor (n_rows, k)
    terms : CoefficientTerms
        g, G (and V Tᵀ) of the block for the current templates.
    method : str
    shift : float

    Returns
    -------
    Tensor (n_rows, k)
        Updated, non-negative coefficients.
    """
    offset = data_shift(terms.projection, method, shift, terms.weight_projection)
    return multiplicative_step(coefficients, terms.projection + offset,
                               model_projection_of(coefficients, terms.gram) + offset)


def chi2_rows(coefficients: torch.Tensor, templates: torch.Tensor, chunk: Chunk, out: torch.Tensor) -> torch.Tensor:
    """Write each spectrum's Σ_p V (X − C T)² of one block into ``out`` (n_rows,), from the residual.

    The Gram form Σ V X² − 2 Σ C∘g + Σ_i c_iᵀ G_i c_i would need no (n, p)
    array, but its terms are each ~(S/N)² times χ² and cancel. At S/N
    100–1000 per pixel the float32 rounding of g and G alone leaves it wrong
    by ~2e-4 of χ² even when summed in float64 (measured), 200× the default
    ``tol``; summed in float32 it was quantised and stopped fits early. The
    residual X − C T is small, so float32 holds it to ~1e-7 · S/N of itself,
    and its weighted squares are positive, so their float32 sum per spectrum
    cancels nothing; the caller adds the spectra in float64 (~1e-8 of χ²).

    Parameters
    ----------
    coefficients : Tensor (n_rows, k)
    templates : Tensor (k, n_pixels)
    chunk : Chunk
        Its ``workspace`` is overwritten; it must have at least n_rows rows.
    out : Tensor (n_rows,)

    Returns
    -------
    Tensor
        ``out``.
    """
    residual = torch.addmm(chunk.flux, coefficients, templates, alpha=-1, out=chunk.workspace[: chunk.flux.shape[0]])
    return torch.sum(residual.square_().mul_(chunk.ivar), dim=1, out=out)


def update_templates(templates: torch.Tensor, sums: TemplateSums, method: str, shift: float,
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
    sums : TemplateSums
        g = Cᵀ(V∘X), the pieces of q = Cᵀ(V∘(C T)) and, for Shift-NMF, Cᵀ V,
        summed over all spectra.
    method : str
    shift : float
    smoothness : float
        λ ≥ 0.

    Returns
    -------
    Tensor (k, n_pixels)
    """
    offset = data_shift(sums.projection, method, shift, sums.weight_projection)
    numerator = sums.projection + offset
    denominator = sums.model_projection(templates) + offset
    if smoothness:
        neighbours = neighbour_sum(templates)
        numerator += 2 * smoothness * neighbours
        denominator += smoothness * (templates * neighbour_count(templates.shape[1], templates) + neighbours)
    return multiplicative_step(templates, numerator, denominator)


class TemplateSums:
    """Running sums over spectra of the terms of the template rule, filled block by block.

    Cᵀ(V∘(C T)) is kept as H = Σ_i (c_i ⊗ c_i) V_i (distinct pairs only), so
    each block is read once and no (n, p) model array is formed; the template
    step contracts H with T.

    Parameters
    ----------
    k, n_pixels : int
    with_weights : bool
        Also accumulate Cᵀ V (needed by Shift-NMF).
    like : Tensor
        Gives device and dtype.
    """

    def __init__(self, k: int, n_pixels: int, with_weights: bool, like: torch.Tensor):
        self.k = k
        self.n_pairs = k * (k + 1) // 2
        self.projection = torch.zeros((k, n_pixels), dtype=like.dtype, device=like.device)
        self._weighted = torch.zeros((self.n_pairs + (k if with_weights else 0), n_pixels), dtype=like.dtype,
                                     device=like.device)
        self.with_weights = with_weights

    @property
    def weight_projection(self) -> torch.Tensor | None:
        """Cᵀ V summed over spectra, shape (k, n_pixels), or None without Shift-NMF."""
        return self._weighted[self.n_pairs:] if self.with_weights else None

    def factors(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Return the left factors of a block's weighted sums, (m, n_rows): c_k c_l (k ≤ l), then Cᵀ for Shift-NMF."""
        left = pair_products(coefficients.T)
        return torch.cat([left, coefficients.T]) if self.with_weights else left

    def add(self, coefficients: torch.Tensor, factors: torch.Tensor, chunk: Chunk) -> None:
        """Add one block's Cᵀ(V∘X), Σ_i (c_i ⊗ c_i) V_i and, for Shift-NMF, Cᵀ V.

        Parameters
        ----------
        coefficients : Tensor (n_rows, k)
        factors : Tensor (m, n_rows)
            ``self.factors(coefficients)``, computed once for a block and sliced for its tiles.
        chunk : Chunk
        """
        self.projection.addmm_(coefficients.T, chunk.weighted_flux)
        self._weighted.addmm_(factors, chunk.ivar)

    def model_projection(self, templates: torch.Tensor) -> torch.Tensor:
        """Return Cᵀ(V∘(C T)) summed over spectra, shape (k, n_pixels), for the given templates.

        Row k is Σ_l H_kl ∘ T_l: one elementwise pass over the (k, k, n_pixels) pair sums (5× faster
        on CPU than a batched (k, k) @ (k, 1) product per pixel, measured at k = 5).
        """
        _, _, index = _pair_indices(self.k, templates.device)
        pairs = self._weighted[index].view(self.k, self.k, -1)
        return (pairs * templates).sum(dim=1)
