"""Simulated MUSE-like spectra with known truth: sources, false detections and blends.

``simulate(n, seed, config)`` returns a :class:`~zstream.io.records.SpectrumBatch`
and a truth table (:data:`TRUTH_SCHEMA`).
"""

from zstream.sim.config import BLEND_CLASSES, FALSE_CLASSES, SOURCE_CLASSES, SimConfig
from zstream.sim.simulate import TRUTH_SCHEMA, simulate

__all__ = ["BLEND_CLASSES", "FALSE_CLASSES", "SOURCE_CLASSES", "SimConfig", "TRUTH_SCHEMA", "simulate"]
