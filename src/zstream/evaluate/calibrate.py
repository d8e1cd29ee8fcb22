"""Calibrate on labelled data: the reliability model of ``zstream calibrate``, and its figures.

:func:`fit_reliability` fits the three calibrated probabilities of
:mod:`zstream.redshift.reliability` (``p_source``, ``p_z_ok``, ``p_blend``) on a
tuning set — a results table and the simulator's truth — with scikit-learn:
one L2-regularised logistic regression per probability on standardised,
transformed features (:func:`candidate_features`), its strength C chosen by
stratified K-fold log loss. Every figure stored with the model (Brier score
against the constant-prevalence baseline, log loss, AUC, expected calibration
error) and every decision threshold is measured on the out-of-fold
probabilities, so none of them has seen its own row.

Decision thresholds: ``p_source`` and ``p_z_ok`` at 0.5, more likely than not (or,
for ``p_source`` with ``min_purity``, the most complete cut that keeps that
out-of-fold purity); ``p_blend`` at the ROC point closest to (FPR 0, TPR 1), the
blend criterion of Bourahma et al. 2026 (Sect. 4.4). A tuned cut sits midway
between the two scores that bracket it, so it does not hug one tuning spectrum.

:func:`calibrate` and :func:`write_thresholds` are the older path: two thresholds
(log10 Δχ² and blend Δχ²) as the ``[thresholds]`` TOML that ``ScanConfig.from_toml``
reads, for scanners that do not load a reliability model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zstream import __version__
from zstream.errors import UserError
from zstream.evaluate.metrics import GF_TOLERANCE, confusion, relative_error, roc_auc, threshold_curve
from zstream.evaluate.scoring import join_results, log10_delta_chi2

if TYPE_CHECKING:
    from zstream.redshift.reliability import Feature, ReliabilityModel, Target

UNUSED_WARNING_BITS = ("SMALL_DELTA_CHI2", "ALL_MASKED")
"""Warning bits that are not features: SMALL_DELTA_CHI2 restates the old Δχ² cut, and an
ALL_MASKED row has no redshift (its probabilities are 0 by definition)."""

SPECTYPE_LEVELS = ("QSO", "STAR")
"""One-hot levels of ``spectype``; GALAXY is the reference level."""

ARTEFACT_FEATURES = ("spike_score", "edge_score")
"""Features that describe a false detection's artefact (a cosmic ray, a flat-field bend). ``p_blend`` is
fitted on true sources only, where they say nothing about blending, so it leaves them and their products
out: with ``edge_score`` in, the blend AUC of the ``wide`` development set fell from 0.92 to 0.87."""


def candidate_features() -> tuple[Feature, ...]:
    """Features tried by :func:`fit_reliability`, before fitting their fill, scale and indicator.

    log10 for the scores that span decades (Δχ², blend Δχ², χ² per pixel, the per-pixel gap
    to the best rival candidate, z_err / (1 + z): the width of the χ² minimum, a pixel-scale
    quantity at every z), asinh for those that can be negative or unbounded (robustness,
    spike score); each clip floor is far below the values that matter. Then every warning
    bit but :data:`UNUSED_WARNING_BITS`, and ``spectype`` one-hot. The redshift itself is not
    a feature: it would learn the tuning population's redshift mix, not the fit's quality.
    """
    # imported here: zstream.redshift loads torch, which the evaluation commands do not need
    from zstream.redshift.reliability import Feature
    from zstream.redshift.zwarning import ZWarning

    return (
        Feature("log10_delta_chi2", "numeric", "delta_chi2", transform="log10", floor=1e-6),
        Feature("robustness", "numeric", "robustness", transform="asinh"),
        Feature("candidate_gap", "numeric", "chi2_alt", minus="chi2_min", denominator="n_pixels_used",
                transform="log10", floor=1e-5),
        Feature("chi2_per_pixel", "numeric", "chi2_min", denominator="n_pixels_used", transform="log10", floor=1e-3),
        Feature("log10_relative_z_err", "numeric", "z_err", denominator="z", denominator_offset=1.0,
                transform="log10", floor=1e-8),
        Feature("spike_score", "numeric", "spike_score", transform="asinh"),
        Feature("edge_score", "numeric", "edge_score"),
        Feature("log10_blend_score", "numeric", "blend_score", transform="log10", floor=1e-5),
        *(Feature(f"warn_{bit.name.lower()}", "bit", "warnings", value=int(bit))
          for bit in ZWarning if bit.name not in UNUSED_WARNING_BITS),
        *(Feature(f"spectype_{level.lower()}", "category", "spectype", value=level) for level in SPECTYPE_LEVELS),
    )


C_GRID = tuple(float(c) for c in np.logspace(-2, 3, 6))
"""Inverse L2 strengths tried for each target, a decade apart (standardised features; finer steps changed
no held-out Brier score by more than 0.001)."""

MORE_LIKELY_THAN_NOT = 0.5
"""Default decision threshold of ``p_source`` and ``p_z_ok``. A cut tuned for maximum F1 sits on a
flat optimum and moved between 0.41 and 0.72 from one simulated tuning set to another; on the
held-out sets 0.5 gave the higher F1 of the two each time (docs/evaluation.md)."""

RELIABILITY_BINS = 10
"""Equal-width probability bins of the reliability curves and the expected calibration error."""

LABELS = {  # keyed by the targets of zstream.redshift.reliability, in its order
    "p_source": "real source (truth is_source); fitted on every result with a redshift",
    "p_z_ok": f"real source with |z − z_true| < {GF_TOLERANCE} (1 + z_true); fitted on every result with a redshift",
    "p_blend": "blend (truth is_blend) among real sources; fitted on the true sources with a redshift",
}


def max_f1_threshold(scores: np.ndarray, positive: np.ndarray) -> dict:
    """Cut ``score > t`` that maximises F1.

    Parameters
    ----------
    scores : ndarray (n,)
        NaN / −∞ are never selected.
    positive : ndarray of bool (n,)

    Returns
    -------
    dict
        ``threshold``, and ``f1``, ``completeness``, ``purity`` at it.

    Raises
    ------
    UserError
        Without both classes, or with no finite score.
    """
    curve = _curve(scores, positive)
    best = max(int(np.argmax(curve["f1"])), 1)  # index 0 selects nothing
    return _operating_point(curve, best)


def min_purity_threshold(scores: np.ndarray, positive: np.ndarray, min_purity: float) -> dict:
    """The most complete cut ``score > t`` whose purity is at least ``min_purity``.

    Parameters
    ----------
    scores : ndarray (n,)
    positive : ndarray of bool (n,)
    min_purity : float
        In (0, 1].

    Returns
    -------
    dict
        As :func:`max_f1_threshold`.

    Raises
    ------
    UserError
        Without both classes, or when no cut reaches ``min_purity``.
    """
    curve = _curve(scores, positive)
    reaching = np.flatnonzero(curve["purity"][1:] >= min_purity) + 1
    if reaching.size == 0:
        raise UserError(f"no threshold reaches purity {min_purity:g} on the tuning set "
                        f"(best {float(np.max(curve['purity'][1:])):.4f}); lower --min-purity or omit it")
    return _operating_point(curve, int(reaching[-1]))


def roc_closest_threshold(scores: np.ndarray, positive: np.ndarray) -> dict:
    """Cut ``score > t`` at the ROC point closest to (FPR, TPR) = (0, 1).

    Returns
    -------
    dict
        ``threshold``, and ``tpr``, ``fpr`` at it.

    Raises
    ------
    UserError
        Without both classes, or with no finite score.
    """
    curve = _curve(scores, positive)
    distance = np.hypot(curve["fpr"], 1.0 - curve["completeness"])
    distance[0] = np.inf  # "flag nothing" is not an operating point
    best = int(np.argmin(distance))
    return {"threshold": _midpoint(curve["threshold"], best), "tpr": float(curve["completeness"][best]),
            "fpr": float(curve["fpr"][best])}


def calibration_figures(probability: np.ndarray, positive: np.ndarray, bins: int = RELIABILITY_BINS) -> dict:
    """How well probabilities match outcomes: Brier score, log loss, AUC, reliability curve.

    Parameters
    ----------
    probability : ndarray (n,)
        Predicted probabilities in [0, 1].
    positive : ndarray of bool (n,)
        Outcomes.
    bins : int
        Equal-width bins of the reliability curve.

    Returns
    -------
    dict
        ``n``, ``n_positive``, ``brier``, ``brier_baseline`` (the Brier score of always
        predicting the prevalence), ``brier_skill`` (1 − brier / baseline, ``None`` when the
        baseline is 0), ``log_loss``, ``auc``, ``ece`` (count-weighted mean |observed −
        predicted| over bins) and ``curve`` (per non-empty bin: ``predicted`` mean,
        ``observed`` fraction, ``count``).
    """
    probability = np.asarray(probability, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    outcome = positive.astype(np.float64)
    prevalence = float(outcome.mean()) if outcome.size else 0.0
    brier = float(np.mean((probability - outcome) ** 2)) if outcome.size else None
    baseline = prevalence * (1.0 - prevalence)
    clipped = np.clip(probability, 1e-15, 1.0 - 1e-15)
    log_loss = (float(-np.mean(outcome * np.log(clipped) + (1.0 - outcome) * np.log1p(-clipped)))
                if outcome.size else None)
    which = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    predicted = np.bincount(which, weights=probability, minlength=bins)[filled] / count[filled]
    observed = np.bincount(which, weights=outcome, minlength=bins)[filled] / count[filled]
    return {
        "n": int(outcome.size),
        "n_positive": int(positive.sum()),
        "brier": brier,
        "brier_baseline": baseline,
        "brier_skill": 1.0 - brier / baseline if brier is not None and baseline > 0 else None,
        "log_loss": log_loss,
        "auc": roc_auc(probability, positive),
        "ece": float(np.sum(count[filled] * np.abs(observed - predicted)) / outcome.size) if outcome.size else None,
        "curve": {"predicted": predicted.tolist(), "observed": observed.tolist(), "count": count[filled].tolist()},
    }


def reliability_figures(results: pa.Table, truth: pa.Table, bins: int = RELIABILITY_BINS) -> dict:
    """Calibration of the probabilities a results table carries, against the truth.

    Parameters
    ----------
    results : pyarrow.Table
        Results with some of ``p_source``, ``p_z_ok``, ``p_blend``.
    truth : pyarrow.Table
    bins : int

    Returns
    -------
    dict
        Per probability column present with values, :func:`calibration_figures` on the
        matched rows with a probability (``p_blend``: true sources only). Empty when no
        column is present.
    """
    rows, labels = labelled_rows(results, truth)
    figures = {}
    for name in LABELS:
        if name not in rows.column_names or rows.column(name).null_count == rows.num_rows:
            continue
        probability = np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
        member = ~np.isnan(probability) & (labels["is_source"] if name == "p_blend" else True)
        figures[name] = calibration_figures(probability[member], labels[name][member], bins)
    return figures


def labelled_rows(results: pa.Table, truth: pa.Table) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The results that have a truth row, in truth order, with the label of every target.

    Returns
    -------
    rows : pyarrow.Table
        Result rows matched to truth rows.
    labels : dict of str to ndarray of bool (rows.num_rows,)
        ``p_source``, ``p_z_ok``, ``p_blend`` (see :data:`LABELS`) and ``is_source``.

    Raises
    ------
    UserError
        Missing columns or duplicated spectrum ids (as :func:`~zstream.evaluate.scoring.join_results`).
    """
    data = join_results(results, truth)
    matched = data["matched"]
    index = pc.index_in(truth.column("spectrum_id"), value_set=results.column("spectrum_id"))
    rows = results.take(index.filter(pa.array(matched)))
    is_source = data["is_source"][matched]
    dz = relative_error(data["z_pred"][matched], data["z_true"][matched])
    labels = {
        "p_source": is_source,
        "p_z_ok": is_source & (np.nan_to_num(dz, nan=np.inf) < GF_TOLERANCE),
        "p_blend": data["is_blend"][matched],
        "is_source": is_source,
    }
    return rows, labels


def fit_reliability(
    results: pa.Table,
    truth: pa.Table,
    *,
    candidates: tuple[Feature, ...] | None = None,
    quadratic: bool = True,
    folds: int = 5,
    seed: int = 0,
    min_purity: float | None = None,
    provenance: dict | None = None,
) -> ReliabilityModel:
    """Fit the reliability model on a labelled tuning set.

    Parameters
    ----------
    results : pyarrow.Table
        Scanner results of the tuning set; feature columns may be absent or null.
    truth : pyarrow.Table
        Its truth table (``zstream simulate``).
    candidates : tuple of Feature, optional
        Features to try (default :func:`candidate_features`). One whose input is absent,
        all-null or constant on the fitted rows, or whose column repeats an earlier one, is
        skipped (listed in ``provenance["skipped_features"]``); a numeric one with some nulls
        gets a missing indicator.
    quadratic : bool
        Also every square and pairwise product of the (standardised) numeric features, so each
        logit is a quadratic form: on simulated tuning sets this halves the Brier score of
        ``p_z_ok`` against linear terms alone (docs/evaluation.md).
    folds : int
        Stratified folds of the cross-validation that chooses C and measures every figure.
    seed : int
        Seed of the fold assignment (the fits themselves are deterministic).
    min_purity : float, optional
        Choose the ``p_source`` threshold as the most complete cut with this out-of-fold
        tuning purity instead of 0.5.
    provenance : dict, optional
        Extra JSON values to record (e.g. the input paths).

    Returns
    -------
    ReliabilityModel

    Raises
    ------
    UserError
        Too few rows, or a target without both outcomes (say which).
    """
    # imported here: only fitting needs scikit-learn, and zstream.redshift loads torch
    from sklearn import __version__ as sklearn_version
    from threadpoolctl import threadpool_limits

    from zstream.redshift.reliability import (
        TARGETS,
        ReliabilityModel,
        design_matrix,
        design_names,
        has_redshift,
    )

    rows, labels = labelled_rows(results, truth)
    fitted = has_redshift(rows)
    rows = rows.filter(pa.array(fitted))
    labels = {name: values[fitted] for name, values in labels.items()}
    features, skipped = _fit_features(rows, candidate_features() if candidates is None else candidates, quadratic)
    design, names = design_matrix(features, rows), design_names(features)
    members = {name: labels["is_source"] if name == "p_blend" else np.ones(rows.num_rows, dtype=bool)
               for name in TARGETS}
    for name in TARGETS:  # every target is checked before any is fitted
        _check_outcomes(name, labels[name][members[name]], folds)
    columns = {name: _target_columns(name, features) for name in TARGETS}
    with threadpool_limits(1):  # BLAS threads only add overhead to fits this small
        targets = {name: _fit_target(name, design[np.ix_(members[name], columns[name])], labels[name][members[name]],
                                     tuple(names[i] for i in columns[name]), folds, seed,
                                     min_purity if name == "p_source" else None)
                   for name in TARGETS}
    record = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "zstream_version": __version__,
        "sklearn_version": sklearn_version,
        "n_results": results.num_rows,
        "n_truth": truth.num_rows,
        "n_fitted": rows.num_rows,
        "n_without_redshift": int((~fitted).sum()),
        "folds": folds,
        "fold_seed": seed,
        "model": ("L2 logistic regression per target on standardised features"
                  + (" and their squares and pairwise products" if quadratic else "") + " (scikit-learn, lbfgs)"),
        "skipped_features": skipped,
        **(provenance or {}),
    }
    return ReliabilityModel(features, targets, record)


def calibrate(results: pa.Table, truth: pa.Table) -> dict:
    """Both thresholds of the TOML path from a labelled scan.

    Parameters
    ----------
    results : pyarrow.Table
        Scanner results (``RESULT_SCHEMA``).
    truth : pyarrow.Table
        Truth table (``zstream simulate``).

    Returns
    -------
    dict
        ``source_log10_delta_chi2`` (max F1), ``blend_delta_chi2`` (ROC closest to (0, 1))
        and the figures at them (``source``, ``blend`` sub-dicts).
    """
    data = join_results(results, truth)
    sources = data["is_source"]
    _need_both(sources, "true sources", "false detections")
    source = max_f1_threshold(log10_delta_chi2(data["delta_chi2"]), sources)
    _need_both(data["is_blend"][sources], "blends", "single sources")
    blend = roc_closest_threshold(data["blend_score"][sources], data["is_blend"][sources])
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


def _fit_features(rows: pa.Table, candidates: tuple[Feature, ...],
                  quadratic: bool) -> tuple[tuple[Feature, ...], dict[str, str]]:
    """Fill, standardisation and indicator of each usable candidate (then their products); why others were skipped."""
    from zstream.redshift.reliability import Feature  # imported here: zstream.redshift loads torch

    features, skipped, columns = [], {}, {}

    def add(candidate: Feature) -> None:
        raw = candidate.raw(rows, columns)
        observed = raw[~np.isnan(raw)]
        if observed.size == 0:
            skipped[candidate.name] = "no values in the tuning results"
            return
        if np.ptp(observed) == 0:
            skipped[candidate.name] = f"constant ({observed[0]:g}) in the tuning results"
            return
        feature = candidate
        if candidate.kind in ("numeric", "product"):
            fill = float(np.median(observed)) if candidate.kind == "numeric" else 0.0
            filled = np.where(np.isnan(raw), fill, raw)
            feature = replace(candidate, fill=fill, center=float(filled.mean()), scale=float(filled.std()),
                              indicator=bool(observed.size < raw.size), low=float(observed.min()),
                              high=float(observed.max()))
        design = feature.design(raw)
        twin = next((name for name, column in columns.items() if np.array_equal(column, design[:, 0])), None)
        if twin is not None:
            skipped[candidate.name] = f"same as {twin} on the tuning results"
            return
        columns.update(zip(feature.design_names, design.T))
        features.append(feature)

    for candidate in candidates:
        add(candidate)
    if quadratic:
        numeric = [feature.name for feature in features if feature.kind == "numeric"]
        for index, first in enumerate(numeric):
            for second in numeric[index:]:
                add(Feature(f"{first}^2" if first == second else f"{first}*{second}", "product",
                            factors=(first, second)))
    if not features:
        raise UserError("calibration: no usable feature in the results (Δχ², robustness, ... all missing or "
                        "constant); check the scan output")
    return tuple(features), skipped


def _target_columns(name: str, features: tuple[Feature, ...]) -> np.ndarray:
    """Design columns a target is fitted on: all of them, but for ``p_blend`` none of :data:`ARTEFACT_FEATURES`."""
    columns, start = [], 0
    for feature in features:
        width = len(feature.design_names)
        sources = feature.factors if feature.kind == "product" else (feature.name,)
        if not (name == "p_blend" and set(sources) & set(ARTEFACT_FEATURES)):
            columns.extend(range(start, start + width))
        start += width
    return np.asarray(columns, dtype=np.int64)


def _fit_target(name: str, design: np.ndarray, positive: np.ndarray, names: tuple[str, ...], folds: int, seed: int,
                min_purity: float | None) -> Target:
    """One logistic regression: C by out-of-fold log loss, figures and threshold out of fold, final fit on all."""
    # imported here: only fitting needs scikit-learn, and zstream.redshift loads torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from zstream.redshift.reliability import Target

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    out_of_fold = {}
    for strength in C_GRID:
        estimator = LogisticRegression(C=strength, max_iter=2000)
        predicted = cross_val_predict(estimator, design, positive, cv=splitter, method="predict_proba")
        out_of_fold[strength] = predicted[:, 1]
    figures = {strength: calibration_figures(p, positive) for strength, p in out_of_fold.items()}
    strength = min(C_GRID, key=lambda c: figures[c]["log_loss"])
    probability = out_of_fold[strength]
    if name == "p_blend":
        point = roc_closest_threshold(probability, positive)
        rule = "ROC point closest to (FPR 0, TPR 1) of the out-of-fold probabilities on the tuning set"
    elif min_purity is not None:
        point = min_purity_threshold(probability, positive, min_purity)
        rule = f"most complete cut with out-of-fold purity ≥ {min_purity:g} on the tuning set"
    else:
        chosen = confusion(probability >= MORE_LIKELY_THAN_NOT, positive)
        point = {"threshold": MORE_LIKELY_THAN_NOT, **{key: chosen[key] for key in ("f1", "completeness", "purity")}}
        rule = "more likely than not (p ≥ 0.5: the fewest expected wrong decisions for a calibrated probability)"
    final = LogisticRegression(C=strength, max_iter=2000).fit(design, positive)
    metrics = {**figures[strength], "C": strength, "at_threshold": {k: v for k, v in point.items() if k != "threshold"}}
    return Target(
        name=name,
        intercept=float(final.intercept_[0]),
        coefficients=dict(zip(names, (float(c) for c in final.coef_[0]))),
        threshold=point["threshold"],
        threshold_rule=rule,
        label=LABELS[name],
        metrics=metrics,
    )


def _check_outcomes(name: str, positive: np.ndarray, folds: int) -> None:
    """Both outcomes of a target's label, each at least once per fold."""
    _need_both(positive, f"positive and negative {name} labels ({LABELS[name]})", "")
    n_minority = int(min(positive.sum(), (~positive).sum()))
    if n_minority < folds:
        raise UserError(f"calibration of {name}: only {n_minority} rows of the rarer outcome, fewer than "
                        f"{folds} folds; use a larger tuning set (zstream simulate --n) or fewer folds")


def _curve(scores: np.ndarray, positive: np.ndarray) -> dict[str, np.ndarray]:
    """Threshold curve with at least one finite score and both classes."""
    _need_both(positive, "positive", "negative rows")
    curve = threshold_curve(scores, positive)
    if curve["threshold"].size < 2:
        raise UserError("calibration: no finite score to set a threshold on; check the scan output")
    return curve


def _operating_point(curve: dict[str, np.ndarray], index: int) -> dict:
    return {"threshold": _midpoint(curve["threshold"], index), "f1": float(curve["f1"][index]),
            "completeness": float(curve["completeness"][index]), "purity": float(curve["purity"][index])}


def _midpoint(thresholds: np.ndarray, index: int) -> float:
    """Cut between the score selected last at ``index`` and the next lower distinct score (or a little below)."""
    upper = float(np.nextafter(thresholds[index], np.inf))  # undo the just-below offset of threshold_curve
    if index + 1 < thresholds.size:
        return 0.5 * (upper + float(np.nextafter(thresholds[index + 1], np.inf)))
    return upper - 0.1 * (1.0 + abs(upper))


def _need_both(positive: np.ndarray, positive_name: str, negative_name: str) -> None:
    n_positive = int(np.sum(positive))
    if n_positive == 0 or n_positive == positive.size:
        both = f"{positive_name} and {negative_name}" if negative_name else positive_name
        raise UserError(
            f"calibration needs both {both}; got {n_positive} of {positive.size}. "
            "Use a labelled set with both (zstream simulate makes one)"
        )
