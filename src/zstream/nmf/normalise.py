"""Normalisation conventions: templates of unit root-mean-square, data in units of their typical noise.

NMF has a scale degeneracy per template (T_k → s T_k, C_k → C_k / s leaves C T
unchanged). Fixing the RMS of each template to 1 makes templates comparable
across fits and puts the flux scale into the coefficients. Templates that are
identically zero are left as they are. Normalisation is applied to the
starting templates and to the final result, not between iterations, because
rescaling would change the smoothness penalty and break the monotone decrease.

The fit is the same in any flux units: X → a X, V → V / a² leaves χ² and the
templates unchanged and scales the coefficients by a. Data arrive in physical
units (flux ~1e-20, ivar ~1e40, beyond float32), so the engine works on X / u
and V u², with u the typical noise σ rounded to a power of two
(``noise_unit``). Power-of-two scaling is exact in binary floating point, so
it changes no digit of V X², of χ² or of the templates, and the coefficients
are multiplied by u on the way out.
"""

from __future__ import annotations

import math

import torch


def noise_unit(typical_ivar: float) -> float:
    """Return the flux unit 2^round(−½ log2 ivar): the noise σ of a typical pixel, as a power of two.

    Parameters
    ----------
    typical_ivar : float
        A typical (median) inverse variance of the observed pixels, > 0.

    Returns
    -------
    float
        u with ``typical_ivar · u²`` in [0.5, 2]: data in units of u have ivar ~1 and flux ~S/N.
    """
    return math.ldexp(1.0, -round(0.5 * math.log2(typical_ivar)))


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
