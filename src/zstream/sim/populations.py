"""Noise-free models of the simulated source populations, on the observed grid.

Each population draws its redshift and physical parameters from ``rng`` and
returns a :class:`SourceModel`. Emission-line fluxes are relative (brightest
line ~ 1); the simulator rescales each model to the S/N it draws. Every
population has the signature ``(rng, wave, lsf_sigma, ratios)``; ``ratios``
(:class:`~zstream.sim.config.LineRatioRanges`) sets the line-ratio ranges of
the populations with nebular or broad lines and is unused by the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zstream.sim import lines
from zstream.sim.config import LineRatioRanges
from zstream.sim.profiles import (
    absorption,
    break_4000,
    gaussian_lines,
    igm_transmission,
    observed_sigma,
    planck,
    power_law,
    split_gaussian,
)

REDSHIFT_RANGES: dict[str, tuple[float, float]] = {
    "starforming": (0.005, 0.6),
    "oii": (0.25, 1.5),
    "lae": (2.9, 6.65),
    "passive": (0.05, 1.0),
    "star": (-0.001, 0.001),
    "qso": (0.3, 4.0),
}
"""Redshift range drawn uniformly for each population."""


@dataclass
class SourceModel:
    """One noise-free source on the observed grid.

    Attributes
    ----------
    z : float
    continuum, emission : ndarray (n_pixels,)
        Continuum (with absorption) and emission-line flux density.
    brightest_line : ndarray (n_pixels,) or None
        Profile of the strongest emission line inside the observed range; the
        simulator scales the model so that this line has the drawn S/N.
        ``None`` for continuum sources, which are scaled on continuum S/N.
    """

    z: float
    continuum: np.ndarray
    emission: np.ndarray
    brightest_line: np.ndarray | None

    @property
    def flux(self) -> np.ndarray:
        """Total noise-free flux density."""
        return self.continuum + self.emission

    def scaled(self, factor: float) -> "SourceModel":
        """The same source ``factor`` times brighter."""
        line = None if self.brightest_line is None else self.brightest_line * factor
        return SourceModel(self.z, self.continuum * factor, self.emission * factor, line)


def _emission(
    wave: np.ndarray, z: float, rest: list[float], fluxes: list[float], velocity_sigma: float, lsf_sigma: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum of Gaussian lines and the profile of the brightest one that falls on the grid."""
    centers = np.asarray(rest) * (1.0 + z)
    fluxes_arr = np.asarray(fluxes, dtype=np.float64)
    profiles = gaussian_lines(wave, centers, fluxes_arr, observed_sigma(centers, velocity_sigma, lsf_sigma))
    on_grid = (centers > wave[0]) & (centers < wave[-1])
    brightest = profiles[int(np.argmax(np.where(on_grid, fluxes_arr, -np.inf)))] if on_grid.any() else None
    return profiles.sum(axis=0), brightest


def _continuum_for_ew(shape: np.ndarray, shape_at_line: float, line_flux: float, rest_ew: float, z: float) -> np.ndarray:
    """Scale a continuum ``shape`` so the line of ``line_flux`` has rest equivalent width ``rest_ew`` (Å)."""
    return shape * line_flux / (rest_ew * (1.0 + z) * shape_at_line)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(10.0 ** rng.uniform(np.log10(low), np.log10(high)))


def _draw_z(rng: np.random.Generator, name: str) -> float:
    return float(rng.uniform(*REDSHIFT_RANGES[name]))


def starforming(
    rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges
) -> SourceModel:
    """Low-z star-forming galaxy: Balmer, [NII], [SII], [OIII], [OII] lines on a blue continuum."""
    z = _draw_z(rng, "starforming")
    h_alpha = 1.0
    h_beta = h_alpha / 2.86 * rng.uniform(*ratios.balmer_attenuation)
    n_ii = h_alpha * rng.uniform(*ratios.n_ii_h_alpha)
    s_ii = h_alpha * rng.uniform(*ratios.s_ii_h_alpha)
    o_iii = h_beta * 10.0 ** rng.uniform(*ratios.log_o_iii_h_beta)
    o_ii = h_beta * rng.uniform(*ratios.o_ii_h_beta_starforming)
    doublet = rng.uniform(*ratios.o_ii_doublet_starforming)
    emission, brightest = _emission(
        wave,
        z,
        [lines.O_II_3726, lines.O_II_3729, lines.H_DELTA, lines.H_GAMMA, lines.H_BETA, lines.O_III_4959,
         lines.O_III_5007, lines.O_I_6300, lines.N_II_6548, lines.H_ALPHA, lines.N_II_6583, lines.S_II_6716,
         lines.S_II_6731],
        [o_ii / (1 + doublet), o_ii * doublet / (1 + doublet), 0.26 * h_beta, 0.47 * h_beta, h_beta, o_iii / 2.98,
         o_iii, 0.05 * h_alpha, n_ii / 3.05, h_alpha, n_ii, 0.55 * s_ii, 0.45 * s_ii],
        rng.uniform(30.0, 120.0),
        lsf_sigma,
    )
    rest = wave / (1.0 + z)
    slope = rng.uniform(-1.5, 0.5)
    shape = power_law(rest, slope) * break_4000(rest, rng.uniform(1.05, 1.3))
    continuum = _continuum_for_ew(shape, float(power_law(np.array(lines.H_ALPHA), slope)), h_alpha,
                                  _log_uniform(rng, 15.0, 200.0), z)
    return SourceModel(z, continuum, emission, brightest)


def oii_emitter(
    rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges
) -> SourceModel:
    """[OII]-dominated galaxy up to z ≈ 1.5: resolved λλ3726,3729 doublet, weak Balmer and [OIII]."""
    z = _draw_z(rng, "oii")
    o_ii = 1.0
    doublet = rng.uniform(*ratios.o_ii_doublet_oii)
    h_beta = o_ii / rng.uniform(*ratios.o_ii_h_beta_oii)
    o_iii = h_beta * 10.0 ** rng.uniform(*ratios.log_o_iii_h_beta)
    emission, brightest = _emission(
        wave,
        z,
        [lines.O_II_3726, lines.O_II_3729, lines.NE_III, lines.H_DELTA, lines.H_GAMMA, lines.H_BETA,
         lines.O_III_4959, lines.O_III_5007, lines.H_ALPHA],
        [o_ii / (1 + doublet), o_ii * doublet / (1 + doublet), 0.1 * o_ii, 0.26 * h_beta, 0.47 * h_beta, h_beta,
         o_iii / 2.98, o_iii, 2.86 * h_beta],
        rng.uniform(30.0, 100.0),
        lsf_sigma,
    )
    rest = wave / (1.0 + z)
    slope = rng.uniform(-2.0, 0.0)
    shape = power_law(rest, slope) * break_4000(rest, rng.uniform(1.0, 1.2))
    continuum = _continuum_for_ew(shape, float(power_law(np.array(lines.O_II_3729), slope)), o_ii,
                                  _log_uniform(rng, 15.0, 150.0), z)
    return SourceModel(z, continuum, emission, brightest)


def lya_emitter(rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges) -> SourceModel:
    """Lyα emitter at 2.9 < z < 6.7: asymmetric line with a red wing, IGM-suppressed blue continuum."""
    z = _draw_z(rng, "lae")
    center = lines.LY_ALPHA * (1.0 + z)
    sigma_blue = float(observed_sigma(center, rng.uniform(40.0, 100.0), lsf_sigma))
    line = split_gaussian(wave, center, 1.0, sigma_blue, sigma_blue * rng.uniform(1.5, 3.0)) * igm_transmission(
        wave, z
    ) ** 0.5
    rest = wave / (1.0 + z)
    slope = rng.uniform(-2.5, -1.5)
    continuum = _continuum_for_ew(power_law(rest, slope), float(power_law(np.array(1250.0), slope)), 1.0,
                                  _log_uniform(rng, 20.0, 200.0), z) * igm_transmission(wave, z)
    return SourceModel(z, continuum, line, line)


_PASSIVE_ABSORPTION = (
    (lines.CA_II_K, 0.4), (lines.CA_II_H, 0.35), (lines.H_DELTA, 0.15), (lines.G_BAND, 0.2), (lines.H_GAMMA, 0.12),
    (lines.H_BETA, 0.1), (lines.MG_B, 0.15), (lines.FE_5270, 0.08), (lines.NA_D, 0.12), (lines.H_ALPHA, 0.1),
)


def passive(rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges) -> SourceModel:
    """Passive galaxy: red continuum, strong 4000 Å break, Ca H&K, G band, Mg b, Na D absorption."""
    z = _draw_z(rng, "passive")
    rest = wave / (1.0 + z)
    rest_centers = np.array([center for center, _ in _PASSIVE_ABSORPTION])
    depths = np.array([depth for _, depth in _PASSIVE_ABSORPTION]) * rng.uniform(0.7, 1.3, rest_centers.size)
    centers = rest_centers * (1.0 + z)
    sigmas = observed_sigma(centers, rng.uniform(120.0, 250.0), lsf_sigma)
    continuum = (
        power_law(rest, rng.uniform(0.5, 2.0))
        * break_4000(rest, rng.uniform(1.4, 2.1))
        * absorption(wave, centers, depths, sigmas)
    )
    return SourceModel(z, continuum, np.zeros_like(wave), None)


def star(rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges) -> SourceModel:
    """Star (z = v/c, |v| < 300 km/s): Planck continuum, Balmer / metal lines, TiO bands when cool."""
    z = _draw_z(rng, "star")
    temperature = _log_uniform(rng, 3200.0, 10000.0)
    hot = np.clip((temperature - 5000.0) / 5000.0, 0.0, 1.0)
    cool = np.clip((6500.0 - temperature) / 3000.0, 0.0, 1.0)
    rest_centers = np.array([lines.H_BETA, lines.H_ALPHA, lines.MG_B, lines.NA_D, lines.CA_II_8498,
                             lines.CA_II_8542, lines.CA_II_8662])
    depths = np.array([0.5 * hot + 0.05, 0.5 * hot + 0.05, 0.3 * cool + 0.05, 0.3 * cool + 0.05,
                       0.3, 0.4, 0.35]) * rng.uniform(0.8, 1.2, rest_centers.size)
    centers = rest_centers * (1.0 + z)
    rest = wave / (1.0 + z)
    continuum = planck(rest, temperature) * absorption(wave, centers, depths, observed_sigma(centers, 10.0, lsf_sigma))
    tio_depth = 0.5 * np.clip((4000.0 - temperature) / 800.0, 0.0, 1.0)
    for low, high in lines.TIO_BANDS:
        band = 0.5 * (1.0 + np.tanh((rest - low) / 3.0)) * 0.5 * (1.0 - np.tanh((rest - high) / 30.0))
        continuum = continuum * (1.0 - tio_depth * band)
    return SourceModel(z, continuum, np.zeros_like(wave), None)


_QSO_BROAD = (
    (lines.LY_ALPHA, 1.0), (lines.N_V, 0.2), (lines.SI_IV, 0.1), (lines.C_IV, 0.5), (lines.HE_II, 0.05),
    (lines.C_III, 0.25), (lines.MG_II, 0.3), (lines.H_GAMMA, 0.1), (lines.H_BETA, 0.25), (lines.H_ALPHA, 0.8),
)


def quasar(rng: np.random.Generator, wave: np.ndarray, lsf_sigma: float, ratios: LineRatioRanges) -> SourceModel:
    """Quasar at 0.3 < z < 4: power-law continuum, broad UV/optical lines, narrow [OIII], Lyα forest."""
    z = _draw_z(rng, "qso")
    rest_centers = [center for center, _ in _QSO_BROAD]
    fluxes = [flux for _, flux in _QSO_BROAD] * rng.uniform(*ratios.qso_line_scatter, len(_QSO_BROAD))
    broad, brightest = _emission(wave, z, rest_centers, list(fluxes), rng.uniform(2000.0, 6000.0) / 2.355, lsf_sigma)
    narrow, _ = _emission(wave, z, [lines.O_III_4959, lines.O_III_5007], [0.02, 0.06], 200.0, lsf_sigma)
    rest = wave / (1.0 + z)
    slope = rng.uniform(-1.8, -1.2)
    continuum = _continuum_for_ew(power_law(rest, slope), float(power_law(np.array(lines.MG_II), slope)), 0.3,
                                  _log_uniform(rng, 20.0, 60.0), z)
    transmission = igm_transmission(wave, z)
    line = None if brightest is None else brightest * transmission
    return SourceModel(z, continuum * transmission, (broad + narrow) * transmission, line)


POPULATIONS: dict[str, Callable[[np.random.Generator, np.ndarray, float, LineRatioRanges], SourceModel]] = {
    "starforming": starforming,
    "oii": oii_emitter,
    "lae": lya_emitter,
    "passive": passive,
    "star": star,
    "qso": quasar,
}
"""Model generator of each true-source class (keys are ``config.SOURCE_CLASSES``)."""
