"""Figures of merit of Bourahma et al. 2026 (Sect. 3.4, 4.3, 4.4) on plain arrays.

Redshift: relative error δz = |z_p − z_t| / (1 + z_t) (Eq. 9), good fraction GF
with tolerance 0.005 (Eq. 10), MAE after rejecting δz > 5 MAD (Eq. 11).
Detection: completeness and purity of a threshold on a score. Blends: ROC and AUC.
A missing prediction (NaN) counts as a failure everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

GF_TOLERANCE = 0.005
"""t_MUSE of Bourahma et al. 2026: good when |Δz| < 0.005 (1 + z_t)."""

CATASTROPHIC_TOLERANCE = 0.05
"""Catastrophic failure: δz above this (ten times the GF tolerance; line mis-identifications)."""

MAD_REJECTION = 5.0
"""MAE and median δz reject predictions with δz > 5 × MAD (Bourahma et al. 2026, Eq. 11)."""


def relative_error(z_pred: np.ndarray, z_true: np.ndarray) -> np.ndarray:
    """δz = |z_p − z_t| / (1 + z_t); NaN where the prediction is missing. Shapes ``(n,)``."""
    return np.abs(np.asarray(z_pred, dtype=np.float64) - z_true) / (1.0 + np.asarray(z_true, dtype=np.float64))


def redshift_summary(z_pred: np.ndarray, z_true: np.ndarray, tolerance: float = GF_TOLERANCE) -> dict:
    """GF, outlier-rejected MAE and median δz, catastrophic rate of one set of predictions.

    Parameters
    ----------
    z_pred, z_true : ndarray (n,)
        Predicted (NaN = missing) and true redshifts.
    tolerance : float
        GF tolerance t in |Δz| < t (1 + z_t).

    Returns
    -------
    dict
        ``n``, ``good_fraction``, ``mae``, ``median_dz``, ``n_rejected`` (by the 5 MAD cut,
        missing predictions included) and ``catastrophic_rate``; rates are ``None`` when ``n == 0``.
    """
    dz = relative_error(z_pred, z_true)
    n = int(dz.size)
    if n == 0:
        return {"n": 0, "good_fraction": None, "mae": None, "median_dz": None, "n_rejected": 0,
                "catastrophic_rate": None}
    found = np.isfinite(dz)
    kept = dz[found]
    if kept.size:
        mad = np.median(np.abs(kept - np.median(kept)))
        kept = kept[kept <= MAD_REJECTION * mad] if mad > 0 else kept[kept <= np.median(kept)]
    return {
        "n": n,
        "good_fraction": float(np.mean(found & (np.nan_to_num(dz, nan=np.inf) < tolerance))),
        "mae": float(np.mean(kept)) if kept.size else None,
        "median_dz": float(np.median(kept)) if kept.size else None,
        "n_rejected": int(n - kept.size),
        "catastrophic_rate": float(np.mean(~found | (np.nan_to_num(dz, nan=np.inf) > CATASTROPHIC_TOLERANCE))),
    }


def confusion(selected: np.ndarray, positive: np.ndarray) -> dict:
    """Counts and rates of a binary decision.

    Parameters
    ----------
    selected, positive : ndarray of bool (n,)
        Decision and truth label.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``tn``, ``completeness`` (= TPR, recall), ``purity``
        (precision), ``fpr`` and ``f1``; a rate is ``None`` when its denominator is 0.
    """
    selected = np.asarray(selected, dtype=bool)
    positive = np.asarray(positive, dtype=bool)
    tp = int(np.sum(selected & positive))
    fp = int(np.sum(selected & ~positive))
    fn = int(np.sum(~selected & positive))
    tn = int(np.sum(~selected & ~positive))
    completeness = _ratio(tp, tp + fn)
    purity = _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "completeness": completeness, "purity": purity,
            "fpr": _ratio(fp, fp + tn), "f1": f1}


def threshold_curve(scores: np.ndarray, positive: np.ndarray) -> dict[str, np.ndarray]:
    """Decision ``score > t`` swept over every distinct finite score (and −∞).

    Missing scores (NaN) are never selected.

    Parameters
    ----------
    scores : ndarray (n,)
    positive : ndarray of bool (n,)

    Returns
    -------
    dict of ndarray (m,)
        ``threshold`` (decreasing, first −∞ replaced by just below the lowest score so it is
        finite), ``tp``, ``fp``, ``completeness`` (TPR), ``fpr``, ``purity`` (1 where nothing is
        selected) and ``f1``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    finite = np.isfinite(scores)
    order = np.argsort(-scores[finite], kind="stable")
    sorted_scores = scores[finite][order]
    sorted_positive = positive[finite][order]
    # candidate thresholds: +inf (select nothing), then each distinct score from just below it
    # index of the last occurrence of each distinct score
    distinct_last = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), sorted_scores.size - 1].astype(int)
    if sorted_scores.size == 0:
        distinct_last = distinct_last[:0]
    tp = np.r_[0, np.cumsum(sorted_positive)[distinct_last]]
    fp = np.r_[0, np.cumsum(~sorted_positive)[distinct_last]]
    below = np.nextafter(sorted_scores[distinct_last], -np.inf)
    threshold = np.r_[sorted_scores[0] if sorted_scores.size else 0.0, below]
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    selected = tp + fp
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "completeness": tp / n_positive if n_positive else np.zeros_like(tp, dtype=float),
        "fpr": fp / n_negative if n_negative else np.zeros_like(fp, dtype=float),
        "purity": np.divide(tp, selected, out=np.ones(tp.shape), where=selected > 0),
        "f1": np.divide(2 * tp, tp + n_positive + fp, out=np.zeros(tp.shape), where=(tp + n_positive + fp) > 0),
    }


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counting ½.

    Missing scores (NaN) rank below every finite score (never flagged). ``None`` without
    both classes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    if n_positive == 0 or n_negative == 0:
        return None
    ranks = rankdata(np.nan_to_num(scores, nan=-np.inf))
    u_statistic = ranks[positive].sum() - n_positive * (n_positive + 1) / 2.0
    return float(u_statistic / (n_positive * n_negative))


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None
