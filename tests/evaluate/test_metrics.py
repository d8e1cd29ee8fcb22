"""Figures of merit on hand-made cases whose answers are known by construction."""

import numpy as np
import pytest

from zstream.evaluate.metrics import (
    GF_TOLERANCE,
    confusion,
    redshift_summary,
    relative_error,
    roc_auc,
    threshold_curve,
)

Z_TRUE = np.array([0.1, 0.5, 1.0, 3.0, 4.5, 6.0])


def test_perfect_predictions():
    summary = redshift_summary(Z_TRUE.copy(), Z_TRUE)
    assert summary["good_fraction"] == 1.0
    assert summary["mae"] == 0.0 and summary["median_dz"] == 0.0
    assert summary["catastrophic_rate"] == 0.0 and summary["n_rejected"] == 0


def test_all_wrong_predictions_are_catastrophic():
    summary = redshift_summary(Z_TRUE + 1.0, Z_TRUE)
    assert summary["good_fraction"] == 0.0
    assert summary["catastrophic_rate"] == 1.0


def test_half_right_and_missing_predictions_count_as_failures():
    z_pred = Z_TRUE.copy()
    z_pred[::2] = np.nan
    summary = redshift_summary(z_pred, Z_TRUE)
    assert summary["good_fraction"] == pytest.approx(0.5)
    assert summary["catastrophic_rate"] == pytest.approx(0.5)
    assert summary["n_rejected"] == 3


def test_gf_tolerance_scales_with_one_plus_z_and_is_strict():
    z_true = np.array([0.0, 3.0])
    just_inside = z_true + 0.99 * GF_TOLERANCE * (1 + z_true)
    just_outside = z_true + 1.01 * GF_TOLERANCE * (1 + z_true)
    assert redshift_summary(just_inside, z_true)["good_fraction"] == 1.0
    assert redshift_summary(just_outside, z_true)["good_fraction"] == 0.0


def test_mae_rejects_outliers_beyond_five_mad():
    rng = np.random.default_rng(3)
    z_true = rng.uniform(0, 3, 200)
    errors = rng.normal(0, 1e-4, 200)
    errors[:5] = 0.5  # five gross outliers
    summary = redshift_summary(z_true + errors * (1 + z_true), z_true)
    dz = np.abs(errors)
    assert summary["n_rejected"] >= 5
    assert summary["mae"] < np.mean(dz[5:]) * 1.01  # outliers gone, and rejection only trims the tail
    assert summary["mae"] < 0.01 * np.mean(dz)


def test_relative_error_definition():
    assert relative_error(np.array([2.1]), np.array([2.0]))[0] == pytest.approx(0.1 / 3.0)


def test_confusion_counts_and_rates():
    selected = np.array([1, 1, 1, 0, 0, 0, 1], bool)
    positive = np.array([1, 1, 0, 1, 0, 0, 1], bool)
    result = confusion(selected, positive)
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (3, 1, 1, 2)
    assert result["completeness"] == pytest.approx(3 / 4)
    assert result["purity"] == pytest.approx(3 / 4)
    assert result["fpr"] == pytest.approx(1 / 3)


def test_confusion_with_nothing_selected_has_undefined_purity():
    result = confusion(np.zeros(3, bool), np.array([1, 0, 1], bool))
    assert result["purity"] is None and result["completeness"] == 0.0


def test_auc_of_perfect_reversed_and_tied_scores():
    positive = np.array([1, 1, 0, 0], bool)
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), positive) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), positive) == 0.0
    assert roc_auc(np.full(4, 0.5), positive) == 0.5


def test_auc_counts_ties_as_half_and_missing_scores_as_lowest():
    scores = np.array([3.0, 2.0, np.nan, 2.0, 1.0])
    positive = np.array([1, 1, 1, 0, 0], bool)
    # pairs (pos, neg): (3,2)=1 (3,1)=1 (2,2)=½ (2,1)=1 (nan,2)=0 (nan,1)=0 → 3.5 / 6
    assert roc_auc(scores, positive) == pytest.approx(3.5 / 6)
    assert roc_auc(scores, np.ones(5, bool)) is None


def test_auc_equals_area_under_the_swept_roc_curve():
    rng = np.random.default_rng(7)
    positive = rng.random(300) < 0.3
    scores = np.round(rng.normal(positive * 1.0, 1.0), 1)  # rounding makes ties
    curve = threshold_curve(scores, positive)
    assert np.trapezoid(curve["completeness"], curve["fpr"]) == pytest.approx(roc_auc(scores, positive))


def test_threshold_curve_runs_from_nothing_selected_to_everything_finite_selected():
    scores = np.array([0.5, -1.0, 2.0, np.nan, -1.0])
    positive = np.array([1, 0, 1, 1, 0], bool)
    curve = threshold_curve(scores, positive)
    assert curve["tp"][0] == 0 and curve["fp"][0] == 0
    assert curve["tp"][-1] == 2 and curve["fp"][-1] == 2  # NaN never selected
    assert np.all(np.diff(curve["threshold"]) < 0)
    for t, tp, fp in zip(curve["threshold"], curve["tp"], curve["fp"]):
        chosen = scores > t
        assert tp == np.sum(chosen & positive) and fp == np.sum(chosen & ~positive)
