"""Evaluation against known truth: GF, MAE, completeness/purity, blend ROC, reports, calibration, rank selection.

``score(results, truth)`` computes the figures of seed 002 as a JSON-ready dict;
``write_report`` turns it into ``report.json`` + ``report.html`` with plots.
"""

from zstream.evaluate.report import headline, write_report
from zstream.evaluate.score import score

__all__ = ["headline", "score", "write_report"]
