"""Choose the source and blend thresholds on labelled data and write them as the scanner's TOML.

Criteria: the source threshold on log10 Δχ² maximises F1 (the balance of
completeness and purity that seed 002 Sect. 4.3 quotes); the blend threshold on
the blend score is the ROC point closest to the ideal (FPR 0, TPR 1), as in
seed 002 Sect. 4.4. Each threshold sits midway between the two scores that
bracket the chosen cut, so it does not hug one training spectrum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from zstream.errors import UserError
from zstream.evaluate.metrics import threshold_curve
from zstream.evaluate.score import join_results, log10_delta_chi2


def _midpoint(thresholds: np.ndarray, index: int) -> float:
    """Cut between the score selected last at ``index`` and the next lower distinct score (or a little below)."""
    upper = float(np.nextafter(thresholds[index], np.inf))  # undo the just-below offset of threshold_curve
    if index + 1 < thresholds.size:
        return 0.5 * (upper + float(np.nextafter(thresholds[index + 1], np.inf)))
    return upper - 0.1 * (1.0 + abs(upper))


def choose_source_threshold(scores: np.ndarray, positive: np.ndarray) -> dict:
    """Threshold on ``scores`` (log10 Δχ²) that maximises F1 for true sources.

    Parameters
    ----------
    scores : ndarray (n,)
        log10 Δχ²; NaN / −∞ are never selected.
    positive : ndarray of bool (n,)
        True source labels.

    Returns
    -------
    dict
        ``threshold``, and ``f1``, ``completeness``, ``purity`` at it.

    Raises
    ------
    UserError
        Without both true and false sources, or with no finite score.
    """
    _need_both(positive, "true sources", "false detections")
    curve = threshold_curve(scores, positive)
    if curve["threshold"].size < 2:
        raise UserError("calibration: no finite log10 Δχ² in the results; check the scan output")
    best = max(int(np.argmax(curve["f1"])), 1)  # index 0 selects nothing
    return {"threshold": _midpoint(curve["threshold"], best), "f1": float(curve["f1"][best]),
            "completeness": float(curve["completeness"][best]), "purity": float(curve["purity"][best])}


def choose_blend_threshold(scores: np.ndarray, positive: np.ndarray) -> dict:
    """Threshold on the blend score at the ROC point closest to (FPR, TPR) = (0, 1).

    Parameters
    ----------
    scores : ndarray (n,)
        ``blend_score`` of true sources.
    positive : ndarray of bool (n,)
        Blend labels.

    Returns
    -------
    dict
        ``threshold``, and ``tpr``, ``fpr`` at it.

    Raises
    ------
    UserError
        Without both blends and single sources.
    """
    _need_both(positive, "blends", "single sources")
    curve = threshold_curve(scores, positive)
    distance = np.hypot(curve["fpr"], 1.0 - curve["completeness"])
    distance[0] = np.inf  # "flag nothing" is not an operating point
    best = int(np.argmin(distance))
    return {"threshold": _midpoint(curve["threshold"], best), "tpr": float(curve["completeness"][best]),
            "fpr": float(curve["fpr"][best])}


def calibrate(results: pa.Table, truth: pa.Table) -> dict:
    """Both thresholds from a labelled scan.

    Parameters
    ----------
    results : pyarrow.Table
        Scanner results (``RESULT_SCHEMA``).
    truth : pyarrow.Table
        Truth table (``zstream simulate``).

    Returns
    -------
    dict
        ``source_log10_delta_chi2``, ``blend_delta_chi2`` and the figures at them
        (``source``, ``blend`` sub-dicts).
    """
    data = join_results(results, truth)
    source = choose_source_threshold(log10_delta_chi2(data["delta_chi2"]), data["is_source"])
    sources = data["is_source"]
    blend = choose_blend_threshold(data["blend_score"][sources], data["is_blend"][sources])
    return {"source_log10_delta_chi2": source["threshold"], "blend_delta_chi2": blend["threshold"],
            "source": source, "blend": blend}


def write_thresholds(path: str | Path, calibration: dict, *, provenance: str = "") -> Path:
    """Write the ``[thresholds]`` TOML the scanner and service read (``ScanConfig.from_toml``).

    Parameters
    ----------
    path : str or Path
    calibration : dict
        Output of :func:`calibrate`.
    provenance : str
        One line saying which data the thresholds come from (written as a comment).

    Returns
    -------
    Path
    """
    source, blend = calibration["source"], calibration["blend"]
    lines = [
        "# Written by zstream calibrate." + (f" {provenance}" if provenance else ""),
        f"# source: max F1 = {source['f1']:.4f} (completeness {source['completeness']:.4f}, purity {source['purity']:.4f})",
        f"# blend: ROC point closest to (0, 1): TPR {blend['tpr']:.4f}, FPR {blend['fpr']:.4f}",
        "[thresholds]",
        f"source_log10_delta_chi2 = {calibration['source_log10_delta_chi2']!r}",
        f"blend_delta_chi2 = {calibration['blend_delta_chi2']!r}",
    ]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _need_both(positive: np.ndarray, positive_name: str, negative_name: str) -> None:
    n_positive = int(np.sum(positive))
    if n_positive == 0 or n_positive == positive.size:
        raise UserError(
            f"calibration needs both {positive_name} and {negative_name}; got {n_positive} of {positive.size}. "
            "Use a labelled set with both (zstream simulate makes one)"
        )
