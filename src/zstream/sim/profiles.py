"""Line profiles and continuum shapes, evaluated on the observed wavelength grid."""

from __future__ import annotations

import numpy as np

from zstream.sim import lines

SPEED_OF_LIGHT_KMS = 299_792.458
HC_OVER_K = 1.438777e8
"""h c / k_B in Å·K, for the Planck function."""

_MADAU_LYA_AMPLITUDE = 0.0036
_MADAU_LYA_INDEX = 3.46


def observed_sigma(center: float | np.ndarray, velocity_sigma: float, lsf_sigma: float) -> np.ndarray:
    """Gaussian sigma in Å of a line at observed ``center``: intrinsic velocity width ⊕ instrument."""
    return np.hypot(np.asarray(center) * velocity_sigma / SPEED_OF_LIGHT_KMS, lsf_sigma)


def gaussian_lines(wave: np.ndarray, centers: np.ndarray, fluxes: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Integrated-flux-normalised Gaussians, one row per line.

    Parameters
    ----------
    wave : ndarray (n_pixels,)
    centers, fluxes, sigmas : ndarray (n_lines,)
        Observed centre (Å), integrated flux and sigma (Å) of each line.

    Returns
    -------
    ndarray (n_lines, n_pixels)
    """
    offset = (wave[None, :] - centers[:, None]) / sigmas[:, None]
    return fluxes[:, None] * np.exp(-0.5 * offset**2) / (np.sqrt(2.0 * np.pi) * sigmas[:, None])


def split_gaussian(wave: np.ndarray, center: float, flux: float, sigma_blue: float, sigma_red: float) -> np.ndarray:
    """Asymmetric (split-normal) line: a steep blue edge and an extended red wing, as Lyα."""
    sigma = np.where(wave < center, sigma_blue, sigma_red)
    norm = flux * 2.0 / (np.sqrt(2.0 * np.pi) * (sigma_blue + sigma_red))
    return norm * np.exp(-0.5 * ((wave - center) / sigma) ** 2)


def absorption(wave: np.ndarray, centers: np.ndarray, depths: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Multiplicative transmission of Gaussian absorption lines, shape ``(n_pixels,)``."""
    offset = (wave[None, :] - centers[:, None]) / sigmas[:, None]
    return np.prod(1.0 - depths[:, None] * np.exp(-0.5 * offset**2), axis=0)


def power_law(rest_wave: np.ndarray, slope: float) -> np.ndarray:
    """f_λ ∝ (λ / 5000 Å)^slope."""
    return (rest_wave / 5000.0) ** slope


def break_4000(rest_wave: np.ndarray, strength: float, width: float = 40.0) -> np.ndarray:
    """Smooth step that dims the continuum blueward of 4000 Å by ``1/strength`` (D4000)."""
    step = 0.5 * (1.0 + np.tanh((rest_wave - lines.BREAK_4000) / width))
    return 1.0 / strength + (1.0 - 1.0 / strength) * step


def planck(rest_wave: np.ndarray, temperature: float) -> np.ndarray:
    """Planck f_λ shape, normalised to 1 at 7000 Å."""

    def shape(wave: np.ndarray) -> np.ndarray:
        return wave**-5.0 / np.expm1(HC_OVER_K / (wave * temperature))

    return shape(rest_wave) / shape(np.array(7000.0))


def igm_transmission(wave: np.ndarray, z: float) -> np.ndarray:
    """Lyα-forest transmission blueward of Lyα (Madau 1995 first term) and zero below the Lyman limit."""
    rest_wave = wave / (1.0 + z)
    tau = _MADAU_LYA_AMPLITUDE * (wave / lines.LY_ALPHA) ** _MADAU_LYA_INDEX
    transmission = np.where(rest_wave < lines.LY_ALPHA, np.exp(-tau), 1.0)
    return np.where(rest_wave < lines.LYMAN_LIMIT, 0.0, transmission)
