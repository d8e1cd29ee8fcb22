"""Starting points: seeded random templates and coefficients, and the per-spectrum scale of a cold start."""

from __future__ import annotations

import numpy as np
import torch

from zstream.nmf.updates import CoefficientTerms, model_projection_of


def random_start(n_spectra: int, n_pixels: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return uniform random templates (k, n_pixels) and coefficients (n_spectra, k) in [0, 1).

    Drawn on the host in float64 from ``numpy.random.default_rng(seed)`` so the
    start is identical on every device and dtype.
    """
    rng = np.random.default_rng(seed)
    templates = rng.uniform(size=(k, n_pixels))
    coefficients = rng.uniform(size=(n_spectra, k))
    return templates, coefficients


def scale_to_data(coefficients: torch.Tensor, terms: CoefficientTerms) -> torch.Tensor:
    """Scale each spectrum's random coefficients by the weighted least-squares factor fitting its data.

    A random start is far from the data's flux scale; one scalar per spectrum,
    a = Σ V X m / Σ V m² with m = c T, removes that mismatch so the first
    multiplicative steps do useful work. Spectra without positive overlap or
    without weight keep their draw.

    Parameters
    ----------
    coefficients : Tensor (n_rows, k)
    terms : CoefficientTerms
        g and G of the block for the starting templates.

    Returns
    -------
    Tensor (n_rows, k)
    """
    overlap = (coefficients * terms.projection).sum(dim=1)
    power = (coefficients * model_projection_of(coefficients, terms.gram)).sum(dim=1)
    usable = (power > 0) & (overlap > 0)
    factor = torch.where(usable, overlap / torch.where(usable, power, torch.ones_like(power)),
                         torch.ones_like(power))
    return coefficients * factor[:, None]
