"""Simulated MUSE-like spectra with known truth: sources, false detections and blends.

``simulate(n, seed, config)`` returns a :class:`~zstream.io.records.SpectrumBatch`
(pass-through columns ``spectype`` and ``sky``) and a truth table (:data:`TRUTH_SCHEMA`).
``source_models(n, seed, config)`` gives the noise-free source behind each spectrum,
``rest_frame_sources`` the same sources on a wide rest-frame grid.
``SimConfig.preset(name)`` builds one of the named populations (:data:`PRESETS`).
"""

from zstream.sim.config import (
    BLEND_CLASSES,
    FALSE_CLASSES,
    PRESETS,
    SOURCE_CLASSES,
    SPECTYPES,
    LineRatioRanges,
    SimConfig,
)
from zstream.sim.generate import SKY_TYPE, TRUTH_SCHEMA, rest_frame_sources, simulate, source_models

__all__ = [
    "BLEND_CLASSES", "FALSE_CLASSES", "PRESETS", "SOURCE_CLASSES", "SPECTYPES", "SKY_TYPE", "LineRatioRanges",
    "SimConfig", "TRUTH_SCHEMA", "rest_frame_sources", "simulate", "source_models",
]
