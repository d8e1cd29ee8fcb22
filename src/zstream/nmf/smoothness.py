"""First-difference smoothness penalty λ‖T Dᵀ‖² on the templates (de Souza et al. 2026, "SpectralUnmix",
Eqs. 1–3).

With D the (p−1)×p first-difference operator, DᵀD = Λ − N where Λ is the
diagonal of neighbour counts (1 at the two ends, 2 inside) and N the 0/1
adjacency of neighbouring pixels. Both parts are non-negative, which is what
the multiplicative template update needs (see ``updates.update_templates``).
"""

from __future__ import annotations

import torch


def penalty(templates: torch.Tensor, smoothness: float) -> float:
    """Return λ Σ_k Σ_j (T_k,j+1 − T_k,j)² for templates (k, n_pixels)."""
    if not smoothness:
        return 0.0
    return smoothness * float(torch.diff(templates, dim=1).square().sum())


def neighbour_sum(templates: torch.Tensor) -> torch.Tensor:
    """Return T N: each pixel's sum of its left and right neighbours, shape (k, n_pixels)."""
    total = torch.zeros_like(templates)
    total[:, 1:] += templates[:, :-1]
    total[:, :-1] += templates[:, 1:]
    return total


def neighbour_count(n_pixels: int, like: torch.Tensor) -> torch.Tensor:
    """Return the diagonal of Λ, the number of neighbours of each pixel, shape (n_pixels,)."""
    count = torch.full((n_pixels,), 2.0, dtype=like.dtype, device=like.device)
    count[0] -= 1
    count[-1] -= 1
    return count.clamp_(min=0)
