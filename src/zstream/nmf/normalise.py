"""Template normalisation convention: every fitted template has unit root-mean-square over pixels.

NMF has a scale degeneracy per template (T_k → s T_k, C_k → C_k / s leaves C T
unchanged). Fixing the RMS of each template to 1 makes templates comparable
across fits and puts the flux scale into the coefficients. Templates that are
identically zero are left as they are. Normalisation is applied to the
starting templates and to the final result, not between iterations, because
rescaling would change the smoothness penalty and break the monotone decrease.
"""

from __future__ import annotations

import torch


def normalise(templates: torch.Tensor, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale templates to unit RMS and coefficients inversely, leaving their product unchanged.

    Parameters
    ----------
    templates : Tensor (k, n_pixels)
    coefficients : Tensor (n_spectra, k)

    Returns
    -------
    templates : Tensor (k, n_pixels)
    coefficients : Tensor (n_spectra, k)
    """
    rms = templates.square().mean(dim=1).sqrt()
    scale = torch.where(rms > 0, rms, torch.ones_like(rms))
    return templates / scale[:, None], coefficients * scale[None, :]
