"""Synthetic bases and spectra with known redshift, built from plain arrays for the redshift tests."""

from __future__ import annotations

import math

import numpy as np

from zstream.grid import LogGrid
from zstream.io.records import Basis, SpectrumBatch

MUSE_WAVELENGTH = np.arange(4600.0, 9350.0 + 0.1, 1.25)
"""MUSE-like observed sampling (Å)."""

LINES = {"lya": (1215.67,), "oii": (3726.03, 3728.82), "hb": (4861.33,), "oiii": (4958.91, 5006.84), "ha": (6562.80,)}


def line_profile(grid: LogGrid, centres: tuple[float, ...], sigma_pixels: float = 6.0) -> np.ndarray:
    """Sum of unit Gaussians at rest wavelengths ``centres`` on ``grid``, shape ``(n_pixels,)``."""
    position = np.arange(grid.n_pixels)
    profile = np.zeros(grid.n_pixels)
    for centre in centres:
        pixel = (math.log10(centre) - grid.log10_min) / grid.step
        profile += np.exp(-0.5 * ((position - pixel) / sigma_pixels) ** 2)
    return profile


def make_basis(grid: LogGrid | None = None, version: str = "test-basis") -> Basis:
    """A 6-template galaxy-like basis: blue and red continua, star-forming lines, Lyα, [OII]-only, Hα."""
    grid = grid or LogGrid()
    wavelength = grid.wavelength
    blue = (wavelength / 4000.0) ** -1.0 * (wavelength > 1216)
    red = 1.0 / (1.0 + np.exp(-(wavelength - 4000.0) / 150.0))
    star_forming = (
        line_profile(grid, LINES["oii"]) * 3
        + line_profile(grid, LINES["hb"])
        + line_profile(grid, LINES["oiii"]) * 2
        + line_profile(grid, LINES["ha"]) * 3
    )
    templates = np.stack(
        [
            blue,
            red,
            star_forming * 5,
            line_profile(grid, LINES["lya"], sigma_pixels=8.0) * 10,
            line_profile(grid, LINES["oii"]) * 10,
            line_profile(grid, LINES["ha"]) * 10 + 0.3 * red,
        ]
    ).astype(np.float32)
    return Basis(templates, grid, version)


STAR_LINES = (3933.7, 3968.5, 4861.3, 5175.0, 5892.9, 6562.8, 8542.1)
"""Ca K, Ca H, Hβ, Mg b, Na D, Hα, Ca triplet: absorption that pins a star to z = 0."""


def two_class_basis() -> Basis:
    """make_basis's galaxy templates plus two star templates (cool and warm continua with absorption)."""
    galaxy = make_basis()
    grid = galaxy.grid
    wavelength = grid.wavelength
    absorption = 1.0 - 0.6 * np.clip(line_profile(grid, STAR_LINES, sigma_pixels=4.0), 0, 1)
    stars = np.stack([(wavelength / 6000.0) ** 2 * absorption, (wavelength / 6000.0) ** -1 * absorption])
    templates = np.concatenate([galaxy.templates, stars.astype(np.float32)])
    return Basis(templates, grid, "two-class", {"classes": {"GALAXY": [0, 6], "STAR": [6, 8]}})


def observe(basis: Basis, coefficients: np.ndarray, z: float, wavelength: np.ndarray = MUSE_WAVELENGTH) -> np.ndarray:
    """Noise-free observed flux per Å of ``coefficients @ templates`` at redshift ``z``."""
    rest_loglam = np.log10(wavelength) - math.log10(1.0 + z)
    model = coefficients @ np.stack([np.interp(rest_loglam, basis.grid.loglam, t, left=0, right=0) for t in basis.templates])
    return model / (math.log(10) * wavelength)  # Eq. 4 inverted: per log10 λ → per Å


def make_batch(
    basis: Basis,
    redshifts: list[float],
    coefficients: list[np.ndarray],
    noise: float,
    seed: int = 0,
    wavelength: np.ndarray = MUSE_WAVELENGTH,
) -> SpectrumBatch:
    """Spectra at known redshifts with Gaussian noise of constant sigma ``noise`` (0: noise-free, ivar = 1)."""
    rng = np.random.default_rng(seed)
    fluxes, ivars = [], []
    for z, c in zip(redshifts, coefficients):
        flux = observe(basis, np.asarray(c, dtype=np.float64), z, wavelength)
        sigma = noise if noise > 0 else 1.0
        if noise > 0:
            flux = flux + rng.normal(0.0, noise, size=flux.shape)
        fluxes.append(flux.astype(np.float32))
        ivars.append(np.full(flux.shape, 1.0 / sigma**2, dtype=np.float32))
    ids = [f"s{i}" for i in range(len(redshifts))]
    return SpectrumBatch(ids, [wavelength.copy() for _ in redshifts], fluxes, ivars, z=np.asarray(redshifts))
