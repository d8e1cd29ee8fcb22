"""Settings of the simulator: instrument, population mix and the data defects it injects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOURCE_CLASSES: tuple[str, ...] = ("starforming", "oii", "lae", "passive", "star", "qso")
"""Populations of true sources (truth ``source_class`` values)."""

FALSE_CLASSES: tuple[str, ...] = ("false_noise", "false_sky", "false_cosmic", "false_flatfield")
"""Kinds of false detections (truth ``source_class`` values, ``is_source`` false)."""

BLEND_CLASSES: tuple[str, ...] = ("starforming", "oii", "lae")
"""Populations that can form either component of a blend (line emitters, as in MUSE deep fields)."""


def _default_class_weights() -> dict[str, float]:
    return {"starforming": 0.25, "oii": 0.25, "lae": 0.25, "passive": 0.1, "star": 0.07, "qso": 0.08}


def _default_false_weights() -> dict[str, float]:
    return {name: 0.25 for name in FALSE_CLASSES}


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Defaults mimic a deep MUSE field (4600–9350 Å, 1.25 Å pixels).

    Attributes
    ----------
    wavelength_min, wavelength_max, pixel_size : float
        Observed wavelength grid in Å (linear, like MUSE).
    lsf_fwhm : float
        Instrumental line-spread FWHM in Å, added in quadrature to the intrinsic width.
    false_fraction, blend_fraction : float
        Fractions of all spectra that are false detections and blends of two sources.
    class_weights, false_weights : dict
        Relative frequency of each true-source population and each false-detection kind.
    line_snr_median, line_snr_dex : float
        Log-normal distribution of the integrated S/N of the brightest line (emission classes).
    cont_snr_median, cont_snr_dex : float
        Log-normal distribution of the per-pixel continuum S/N in 7650–7850 Å
        (continuum classes: passive galaxies and stars; the window of seed 002 Sect. 2).
    min_line_snr, min_cont_snr : float
        Floors of the two S/N draws.
    blend_ratio_range : tuple of float
        Flux ratio (secondary / primary) drawn uniformly in this range.
    bad_pixel_fraction : float
        Fraction of pixels flagged bad (ivar = 0).
    sky_residual_rms : float
        RMS amplitude of sky-subtraction residuals, as a fraction of the sky-line flux.
    offset_fraction, offset_range : float, tuple of float
        Fraction of spectra given a smooth additive systematic, amplitude in units of
        the per-pixel noise (negative-leaning, so some spectra have negative median flux).
    flatfield_fraction, flatfield_range : float, tuple of float
        Fraction of true sources with distorted blue/red ends, amplitude in noise units
        (false ``false_flatfield`` detections get 0.5–2).
    """

    wavelength_min: float = 4600.0
    wavelength_max: float = 9350.0
    pixel_size: float = 1.25
    lsf_fwhm: float = 2.6
    false_fraction: float = 0.15
    blend_fraction: float = 0.10
    class_weights: dict[str, float] = field(default_factory=_default_class_weights)
    false_weights: dict[str, float] = field(default_factory=_default_false_weights)
    line_snr_median: float = 15.0
    line_snr_dex: float = 0.3
    cont_snr_median: float = 3.0
    cont_snr_dex: float = 0.3
    min_line_snr: float = 5.0
    min_cont_snr: float = 1.0
    blend_ratio_range: tuple[float, float] = (0.3, 1.0)
    bad_pixel_fraction: float = 0.002
    sky_residual_rms: float = 0.01
    offset_fraction: float = 0.1
    offset_range: tuple[float, float] = (0.05, 0.3)
    flatfield_fraction: float = 0.03
    flatfield_range: tuple[float, float] = (0.1, 0.5)

    def __post_init__(self) -> None:
        if not 0 < self.pixel_size < self.wavelength_max - self.wavelength_min:
            raise ValueError(
                f"SimConfig: need 0 < pixel_size < wavelength range, got pixel_size={self.pixel_size}, "
                f"range {self.wavelength_min}–{self.wavelength_max} Å"
            )
        if not (0 <= self.false_fraction and 0 <= self.blend_fraction and self.false_fraction + self.blend_fraction <= 1):
            raise ValueError(
                f"SimConfig: false_fraction ({self.false_fraction}) and blend_fraction ({self.blend_fraction}) "
                "must be non-negative and sum to at most 1"
            )
        for name, weights, allowed in (
            ("class_weights", self.class_weights, SOURCE_CLASSES),
            ("false_weights", self.false_weights, FALSE_CLASSES),
        ):
            unknown = sorted(set(weights) - set(allowed))
            if unknown or sum(weights.values()) <= 0 or min(weights.values()) < 0:
                raise ValueError(
                    f"SimConfig.{name}: need non-negative weights with a positive sum over {allowed}, "
                    f"got {weights} (unknown: {unknown})"
                )

    @property
    def wavelength(self) -> np.ndarray:
        """Observed wavelength grid in Å, shape ``(n_pixels,)``."""
        n_pixels = int(np.floor((self.wavelength_max - self.wavelength_min) / self.pixel_size + 1e-9)) + 1
        return self.wavelength_min + self.pixel_size * np.arange(n_pixels, dtype=np.float64)

    @property
    def lsf_sigma(self) -> float:
        """Instrumental Gaussian sigma in Å."""
        return self.lsf_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
