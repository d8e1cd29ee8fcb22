"""Settings of a redshift scan, from code or from a TOML thresholds file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.redshift.classes import SPECTYPES, STAR_Z_RANGE
from zstream.redshift.reliability import ReliabilityModel
from zstream.redshift.skylines import DEFAULT_VARIANCE_FRACTION

THRESHOLD_KEYS = {"source_log10_delta_chi2", "blend_delta_chi2"}
"""Keys of the ``[thresholds]`` table that :meth:`ScanConfig.from_toml` reads."""


@dataclass(frozen=True)
class ScanConfig:
    """How to scan: trial redshifts, decision thresholds and batching.

    Attributes
    ----------
    z_min, z_max, z_step : float
        Trial redshift grid ``z_min, z_min + z_step, ..., ≤ z_max`` (Bourahma et al. 2026: 0–6.7 by 0.0005).
    source_log10_delta_chi2 : float
        ``is_source`` when log10 Δχ² exceeds this (Bourahma et al. 2026, Sect. 4.3: −2).
    blend_delta_chi2 : float
        ``is_blend`` when the blend rescan finds a minimum with Δχ² above this (Sect. 4.4: 0.011).
    blend : bool
        Run the blend rescan at all.
    keep_chi2 : bool
        Keep each spectrum's χ²(z) curve in :attr:`Scanner.last_chi2`.
    batch_size : int
        Spectra per call of the batched engine (bounds memory: about 15 MB per spectrum).
    confusion_window : float
        Minima within ``confusion_window · (1 + z1)`` of the best redshift belong to it: they are
        skipped when looking for the second minimum (robustness) and for a blend.
    max_nnls_iter : int
        Iteration limit of the batched non-negative solver per trial redshift.
    threads : int or None
        torch CPU threads while scanning (restored afterwards); ``None`` leaves torch's setting.
        The scan is many small vector operations, which one thread runs several times faster
        than two contending ones: use one thread per process and one process per core.
    class_z_ranges : dict of str to (float, float)
        Trial-z range of each spectral class; a class not named scans ``z_min … z_max``
        (default: stars within ±0.002, i.e. ±600 km/s, as redrock does).
    n_candidates : int
        Local minima of each class's χ²(z) curve refined exactly and ranked (redrock keeps a few).
    look_elsewhere : float
        Candidates of different classes are ranked by χ² + ``look_elsewhere`` · ln(trial redshifts
        of their class): the best of N trials of noise undercuts the truth by about 2 ln N for
        independent trials, and more when each trial also has more templates to spend on noise, so
        a class searched over 0–6.7 would otherwise beat stars, searched over ±0.002, on faint
        spectra. The default 4 comes from the development seeds (BENCHMARKS.md, "Ranking across
        classes"): 2 → 4 took stars from 0.80/0.84 to 0.98/1.00 and overall GF up 0.9–1.0 points;
        5 began to cost Lyα emitters and QSOs. 0 ranks by χ² alone, as does any spectrum where
        no candidate beats the zero model by its own class's penalty
        (:func:`~zstream.redshift.candidates.rank_candidates`).
    sky_variance_fraction : float
        Sky-line residual RMS, as a fraction of the sky-line flux, added to the variance of
        spectra that carry a ``sky`` column.
    reliability : ReliabilityModel or None
        Calibration from ``zstream calibrate``: results get ``p_source``, ``p_z_ok`` and
        ``p_blend``, and ``is_source`` / ``is_blend`` follow its thresholds instead of the Δχ² cuts.
    """

    z_min: float = 0.0
    z_max: float = 6.7
    z_step: float = 0.0005
    source_log10_delta_chi2: float = -2.0
    blend_delta_chi2: float = 0.011
    blend: bool = True
    keep_chi2: bool = False
    batch_size: int = 16
    confusion_window: float = 0.005
    max_nnls_iter: int = 50
    threads: int | None = 1
    class_z_ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: {"STAR": STAR_Z_RANGE})
    n_candidates: int = 3
    look_elsewhere: float = 4.0
    sky_variance_fraction: float = DEFAULT_VARIANCE_FRACTION
    reliability: ReliabilityModel | None = None

    def __post_init__(self) -> None:
        if not (self.z_min > -1.0 and self.z_max > self.z_min and self.z_step > 0):
            raise UserError(
                f"scan redshift grid: need -1 < z_min < z_max and z_step > 0, got z_min={self.z_min}, "
                f"z_max={self.z_max}, z_step={self.z_step}; fix --z-min/--z-max/--z-step"
            )
        if self.n_z < 3:
            raise UserError(f"scan redshift grid has {self.n_z} trial redshifts, need at least 3; lower --z-step")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"threads must be ≥ 1 (or None for torch's default), got {self.threads}")
        if self.batch_size < 1 or self.max_nnls_iter < 1 or self.n_candidates < 1:
            raise UserError(
                f"batch_size, max_nnls_iter and n_candidates must be ≥ 1, got {self.batch_size}, "
                f"{self.max_nnls_iter} and {self.n_candidates}"
            )
        if not (self.sky_variance_fraction >= 0 and self.look_elsewhere >= 0):
            raise UserError(
                f"sky_variance_fraction and look_elsewhere must be ≥ 0, got {self.sky_variance_fraction} and "
                f"{self.look_elsewhere}"
            )
        for name, (lo, hi) in self.class_z_ranges.items():
            if name not in SPECTYPES or not -1 < lo < hi:
                raise UserError(f"class_z_ranges: {name}={lo, hi}; need a class from {SPECTYPES} and -1 < lo < hi")
        if not all(math.isfinite(v) for v in (self.source_log10_delta_chi2, self.blend_delta_chi2)):
            raise UserError("thresholds source_log10_delta_chi2 and blend_delta_chi2 must be finite numbers")

    @property
    def n_z(self) -> int:
        """Number of trial redshifts."""
        return int(math.floor((self.z_max - self.z_min) / self.z_step + 1e-9)) + 1

    @property
    def z_grid(self) -> np.ndarray:
        """Trial redshifts, shape ``(n_z,)``, float64."""
        return self.z_min + self.z_step * np.arange(self.n_z, dtype=np.float64)

    def z_range(self, spectype: str) -> tuple[float, float]:
        """Trial-z range of a spectral class."""
        return self.class_z_ranges.get(spectype, (self.z_min, self.z_max))

    def trial_shifts(self, grid: LogGrid, spectype: str) -> np.ndarray:
        """Trial pixel shifts of a class on ``grid``: its z range in steps of ``z_step`` (both ends
        included), snapped to whole shifts, one per shift where the grid is the finer."""
        lo, hi = self.z_range(spectype)
        n = int(math.floor((hi - lo) / self.z_step + 1e-9)) + 1
        z = np.append(lo + self.z_step * np.arange(n, dtype=np.float64), hi)
        return np.unique(np.rint(grid.shift_of(z)).astype(np.int64))

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: object) -> "ScanConfig":
        """Config with defaults, thresholds from ``path`` (``[thresholds]`` table), then ``overrides``.

        Raises
        ------
        UserError
            When the file is missing, is not TOML, or holds unknown or non-numeric threshold keys.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise UserError(f"unknown ScanConfig settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{**read_thresholds(path), **overrides})


def read_thresholds(path: str | Path) -> dict[str, float]:
    """Read the ``[thresholds]`` table of a TOML file (keys in :data:`THRESHOLD_KEYS`).

    Raises
    ------
    UserError
        When the file cannot be read or parsed, or a key is unknown or not a number.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"thresholds file {path} not found; give an existing TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"thresholds file {path} is not valid TOML ({error}); fix the file") from None
    table = document.get("thresholds")
    if not isinstance(table, dict):
        raise UserError(f"thresholds file {path} has no [thresholds] table; add one with keys {sorted(THRESHOLD_KEYS)}")
    unknown = set(table) - THRESHOLD_KEYS
    if unknown:
        raise UserError(f"thresholds file {path}: unknown keys {sorted(unknown)}; known: {sorted(THRESHOLD_KEYS)}")
    values = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"thresholds file {path}: {key} = {value!r} is not a number; write e.g. {key} = -2.0")
        values[key] = float(value)
    return values
