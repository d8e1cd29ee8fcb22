"""Settings of the simulator: instrument, population mix and the data defects it injects.

Two named populations (:data:`PRESETS`, built by :meth:`SimConfig.preset`):
``muse-deep``, the defaults, and ``wide``, a differently configured population
for generalisation tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

SOURCE_CLASSES: tuple[str, ...] = ("starforming", "oii", "lae", "passive", "star", "qso")
"""Populations of true sources (truth ``source_class`` values)."""

FALSE_CLASSES: tuple[str, ...] = ("false_noise", "false_sky", "false_cosmic", "false_flatfield")
"""Kinds of false detections (truth ``source_class`` values, ``is_source`` false)."""

BLEND_CLASSES: tuple[str, ...] = ("starforming", "oii", "lae")
"""Populations that can form either component of a blend (line emitters, as in MUSE deep fields)."""

SPECTYPES: dict[str, str] = {
    "starforming": "GALAXY", "oii": "GALAXY", "lae": "GALAXY", "passive": "GALAXY", "star": "STAR", "qso": "QSO",
}
"""Spectral class (redrock's ``GALAXY`` | ``QSO`` | ``STAR``) of each true-source population."""


def _default_class_weights() -> dict[str, float]:
    return {"starforming": 0.25, "oii": 0.25, "lae": 0.25, "passive": 0.1, "star": 0.07, "qso": 0.08}


def _default_false_weights() -> dict[str, float]:
    return {name: 0.25 for name in FALSE_CLASSES}


@dataclass(frozen=True)
class LineRatioRanges:
    """Ranges of the emission-line ratios of the line-emitting populations, each drawn uniformly.

    Defaults are those of the ``muse-deep`` population. Ratios are of integrated
    line fluxes; doublet and multiplet members not named here keep fixed
    atomic ratios ([OIII] 5007/4959 = 2.98, [NII] 6583/6548 = 3.05).

    Attributes
    ----------
    balmer_attenuation : tuple of float
        Hβ / (Hα / 2.86), the dust attenuation of Hβ relative to the case-B
        ratio (1 = no dust), star-forming galaxies.
    n_ii_h_alpha : tuple of float
        [NII] 6583 / Hα, star-forming galaxies.
    s_ii_h_alpha : tuple of float
        [SII] (6716 + 6731) / Hα, star-forming galaxies.
    log_o_iii_h_beta : tuple of float
        log10 [OIII] 5007 / Hβ, star-forming galaxies and [OII] emitters.
    o_ii_h_beta_starforming, o_ii_h_beta_oii : tuple of float
        [OII] (3726 + 3729) / Hβ of star-forming galaxies and of [OII] emitters.
    o_ii_doublet_starforming, o_ii_doublet_oii : tuple of float
        [OII] 3729 / 3726 (electron density) of the same two populations.
    qso_line_scatter : tuple of float
        Factor on each quasar broad-line flux relative to the composite spectrum.
    """

    balmer_attenuation: tuple[float, float] = (0.5, 1.0)
    n_ii_h_alpha: tuple[float, float] = (0.05, 0.4)
    s_ii_h_alpha: tuple[float, float] = (0.08, 0.25)
    log_o_iii_h_beta: tuple[float, float] = (-0.5, 0.7)
    o_ii_h_beta_starforming: tuple[float, float] = (1.0, 3.0)
    o_ii_h_beta_oii: tuple[float, float] = (1.5, 4.0)
    o_ii_doublet_starforming: tuple[float, float] = (0.7, 1.4)
    o_ii_doublet_oii: tuple[float, float] = (0.7, 1.5)
    qso_line_scatter: tuple[float, float] = (0.7, 1.3)

    def __post_init__(self) -> None:
        for item in fields(self):
            low, high = getattr(self, item.name)
            if not low <= high or (low <= 0 and not item.name.startswith("log_")):
                raise ValueError(
                    f"LineRatioRanges.{item.name}: need low <= high (and low > 0 for a ratio), got ({low}, {high})"
                )


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
        (continuum classes: passive galaxies and stars; the window of Bourahma et al.
        2026, "MUSE NMF redshifts", Sect. 2).
    min_line_snr, min_cont_snr : float
        Floors of the two S/N draws.
    blend_ratio_range : tuple of float
        Flux ratio (secondary / primary) drawn uniformly in this range.
    bad_pixel_fraction : float
        Fraction of pixels flagged bad (ivar = 0).
    line_ratios : LineRatioRanges
        Emission-line ratio ranges of the line-emitting populations.
    sky_residual_rms : float
        RMS amplitude of sky-subtraction residuals, as a fraction of the sky-line flux.
    write_sky : bool
        Give each spectrum a ``sky`` pass-through column: the sky spectrum that was
        subtracted (flux units of the spectrum), as MUSE reductions provide.
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
    line_ratios: LineRatioRanges = field(default_factory=LineRatioRanges)
    sky_residual_rms: float = 0.01
    write_sky: bool = True
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

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "SimConfig":
        """The named population of :data:`PRESETS`, with any field overridden.

        Parameters
        ----------
        name : str
            ``muse-deep``, the defaults; or ``wide``: twice the stars and quasars and
            0.4× the Lyα emitters, brighter sources (median line S/N 20, continuum
            S/N 5) with a wider spread (0.45 dex), 2.5× the sky-subtraction
            residuals, and wider, shifted line-ratio ranges (dustier, more
            metal-rich, more highly ionised).
        **overrides
            :class:`SimConfig` fields that replace the preset's values.

        Returns
        -------
        SimConfig

        Raises
        ------
        ValueError
            Unknown ``name``, or invalid settings.
        """
        if name not in _PRESET_SETTINGS:
            raise ValueError(f"SimConfig.preset: unknown population {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**(_PRESET_SETTINGS[name]() | overrides))

    @property
    def wavelength(self) -> np.ndarray:
        """Observed wavelength grid in Å, shape ``(n_pixels,)``."""
        n_pixels = int(np.floor((self.wavelength_max - self.wavelength_min) / self.pixel_size + 1e-9)) + 1
        return self.wavelength_min + self.pixel_size * np.arange(n_pixels, dtype=np.float64)

    @property
    def lsf_sigma(self) -> float:
        """Instrumental Gaussian sigma in Å."""
        return self.lsf_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _wide_settings() -> dict[str, Any]:
    """The settings in which the ``wide`` population differs from ``muse-deep``."""
    return {
        "class_weights": {"starforming": 0.25, "oii": 0.2, "lae": 0.1, "passive": 0.15, "star": 0.15, "qso": 0.15},
        "line_snr_median": 20.0,
        "line_snr_dex": 0.45,
        "cont_snr_median": 5.0,
        "cont_snr_dex": 0.45,
        "sky_residual_rms": 0.025,
        "line_ratios": LineRatioRanges(
            balmer_attenuation=(0.3, 1.0),
            n_ii_h_alpha=(0.1, 0.6),
            s_ii_h_alpha=(0.15, 0.4),
            log_o_iii_h_beta=(-1.0, 1.0),
            o_ii_h_beta_starforming=(0.5, 4.0),
            o_ii_h_beta_oii=(1.0, 6.0),
            o_ii_doublet_starforming=(0.5, 1.5),
            o_ii_doublet_oii=(0.5, 1.5),
            qso_line_scatter=(0.5, 1.5),
        ),
    }


_PRESET_SETTINGS: dict[str, Callable[[], dict[str, Any]]] = {"muse-deep": dict, "wide": _wide_settings}

PRESETS: tuple[str, ...] = tuple(_PRESET_SETTINGS)
"""Names of the simulated populations :meth:`SimConfig.preset` builds; the first is the default."""
