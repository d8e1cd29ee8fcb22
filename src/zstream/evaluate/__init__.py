"""Evaluation against known truth: GF, MAE, completeness/purity, blend ROC, reports, calibration, rank selection.

``score(results, truth)`` computes the figures of Bourahma et al. 2026 ("MUSE NMF redshifts") as a
JSON-ready dict; ``write_report`` turns it into ``report.json`` + ``report.html`` with plots;
``calibrate.fit_reliability`` fits the calibrated probabilities of ``zstream calibrate``.
"""

from zstream.evaluate.report import headline, write_report
from zstream.evaluate.scoring import score

__all__ = ["headline", "score", "write_report"]
