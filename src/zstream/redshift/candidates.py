"""Redshift candidates: a few minima per class, ranked by exact χ² over all classes.

As redrock does, each class's χ²(z) curve gives its best few local minima, each
refined exactly (:func:`zstream.redshift.fitz.refine_minimum`); the lowest χ² over
all classes, plus a look-elsewhere penalty per class (:func:`rank_candidates`), wins,
and the best rival outside its confusion window, whatever its
class, measures how much better it is (``chi2_alt``, robustness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from zstream.redshift.fitz import Refined, local_minima, outside_window
from zstream.redshift.observed import PreparedSpectrum

SPIKE_WIDTH = 2
"""Adjacent pixels a spike may cover (cosmic rays and hot pixels hit one or two)."""

EDGE_FRACTION = 0.1
"""Share of the used pixels at each end of a spectrum that :func:`edge_score` counts: bad flat-fielding
distorts the continuum over the outer few per cent at the blue and red ends (Bourahma et al. 2026, Sect. 4.1)."""

EDGE_SMOOTHING = 25
"""Pixels of the running median that :func:`edge_score` takes of the gain: wider than a resolved
emission line (a few pixels at MUSE's resolution), narrower than a flat-field bend (2–15 % of the range)."""


@dataclass
class Candidate:
    """One refined minimum of one class's χ²(z) curve.

    Attributes
    ----------
    spectype : str
    refined : Refined
        Exact sub-pixel fit at the minimum.
    at_edge : bool
        The minimum was the first or last trial redshift of its class.
    """

    spectype: str
    refined: Refined
    at_edge: bool

    @property
    def z(self) -> float:
        """Refined redshift."""
        return self.refined.z


def curve_minima(chi2: np.ndarray, z: np.ndarray, count: int, window: float) -> np.ndarray:
    """Indices of up to ``count`` lowest local minima, each outside the confusion window of the lower ones.

    Parameters
    ----------
    chi2, z : ndarray (n_z,)
    count : int
    window : float
        Confusion window, in units of ``1 + z``.

    Returns
    -------
    ndarray of int, between 1 and ``count`` entries, lowest χ² first
    """
    minima = local_minima(chi2)
    if minima.size == 0:
        minima = np.array([int(np.argmin(chi2))])
    chosen: list[int] = []
    for index in minima[np.argsort(chi2[minima], kind="stable")]:
        if all(outside_window(z[index : index + 1], z[c], window)[0] for c in chosen):
            chosen.append(int(index))
            if len(chosen) == count:
                break
    return np.asarray(chosen, dtype=np.int64)


def rank_candidates(candidates: list[Candidate], energy: float, penalty: dict[str, float]) -> list[Candidate]:
    """Candidates of every class, best first: by χ² plus their class's look-elsewhere penalty.

    The penalty (``look_elsewhere`` · ln trial redshifts) keeps a class searched over many
    redshifts from winning on noise it can chase, such as a galaxy fit at a random z taking a
    faint star. It only arbitrates between real detections: when no candidate improves on the
    zero model (χ² ``energy``) by more than its own penalty, nothing was detected beyond what
    noise could give and the penalty would just hand the spectrum to the class with the fewest
    trials, so candidates are ranked by χ² alone (a faint single emission line then keeps its
    galaxy fit instead of becoming a featureless star).
    """
    detected = any(energy - c.refined.fit.chi2 > penalty[c.spectype] for c in candidates)
    if not detected:
        return sorted(candidates, key=lambda c: c.refined.fit.chi2)
    return sorted(candidates, key=lambda c: c.refined.fit.chi2 + penalty[c.spectype])


def best_rival(ranked: list[Candidate], window: float) -> Candidate | None:
    """First candidate of ``ranked`` (lowest χ² first) outside the confusion window of the best one."""
    best = ranked[0]
    for candidate in ranked[1:]:
        if outside_window(np.array([candidate.z]), best.z, window)[0]:
            return candidate
    return None


def spike_score(gain: np.ndarray) -> float:
    """Largest share of the fit's χ² gain (:func:`fit_gain`) that ``SPIKE_WIDTH`` adjacent pixels carry.

    A real source spreads its gain over a resolved line or a continuum; a cosmic ray fitted by a
    line template puts nearly all of it in one or two pixels (score near 1). NaN when the model
    explains nothing.
    """
    total = float(gain.sum())
    if not total > 0:
        return float("nan")
    windowed = np.convolve(gain, np.ones(SPIKE_WIDTH), mode="valid") if gain.size >= SPIKE_WIDTH else gain
    return float(np.clip(windowed.max() / total, 0.0, 1.0))


def edge_score(gain: np.ndarray) -> float:
    """Share of the fit's χ² gain (:func:`fit_gain`) carried by broad structure in the outer ``EDGE_FRACTION`` of the used
    pixels at both ends.

    The gain is taken through a running median of ``EDGE_SMOOTHING`` pixels first, so a resolved
    emission line near an end (Lyα at z ≈ 6.5, [OII] at z ≈ 1.4) counts for nothing, while a broad
    bend keeps its gain. A continuum source puts about ``2 · EDGE_FRACTION`` of its gain there; a
    flat-field distortion, which bends only the blue and red ends, nearly all of it (score near 1).
    NaN when the model explains nothing.
    """
    total = float(gain.sum())
    if not total > 0:
        return float("nan")
    width = max(1, int(round(EDGE_FRACTION * gain.size)))
    if gain.size <= 2 * width:
        return 1.0
    broad = median_filter(gain, size=EDGE_SMOOTHING, mode="nearest")
    outer = float(broad[:width].sum() + broad[-width:].sum())
    return float(np.clip(outer / total, 0.0, 1.0))


def fit_gain(spectrum: PreparedSpectrum, model: np.ndarray) -> np.ndarray:
    """χ² the model explains at each used pixel, ``w_i (f_i² − (f_i − m_i)²)``, in wavelength order
    (the input of :func:`spike_score` and :func:`edge_score`)."""
    weight, flux = spectrum.native_weight, spectrum.native_flux
    return weight * (flux**2 - (flux - model) ** 2)
