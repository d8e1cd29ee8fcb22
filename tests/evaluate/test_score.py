"""score() joins results to truth and reports the figures per class, per z bin, for detection and blends."""

import numpy as np
import pytest
from evaluate_builders import make_results

from zstream.errors import UserError
from zstream.evaluate import score

IDS = [f"s{i}" for i in range(8)]


def test_perfect_run(small_truth):
    z = [0.5, 1.0, 3.0, 5.0, 0.8, 4.0, 2.0, 0.1]
    results = make_results(IDS, z, [0.5] * 6 + [1e-4, 1e-3], [0.0] * 4 + [0.5, 0.5, 0.0, 0.0])
    report = score(results, small_truth)
    assert report["redshift"]["overall"]["good_fraction"] == 1.0
    assert report["redshift"]["by_class"]["oii"]["n"] == 2 and report["redshift"]["by_class"]["lae"]["n"] == 2
    assert report["redshift"]["blends"]["good_fraction_primary"] == 1.0
    assert report["detection"]["completeness"] == 1.0 and report["detection"]["purity"] == 1.0
    assert report["blend"]["auc"] == 1.0 and report["blend"]["tpr"] == 1.0 and report["blend"]["fpr"] == 0.0
    assert report["counts"]["n_missing_results"] == 0


def test_half_right_run_with_a_missing_result(small_truth):
    # s0 right, s1 wrong ([OII]/Lyα-style confusion), s2 right, s3 missing; false s6 passes the cut
    results = make_results(
        [i for i in IDS if i != "s3"],
        [0.5, 4.44, 3.0, 0.8, 4.0, 2.0, 0.1],
        [0.5, 0.02, 0.5, 0.5, 0.5, 0.05, 1e-4],
        [0.0, 0.0, 0.3, 0.5, 0.005, 0.0, 0.0],
    )
    report = score(results, small_truth)
    assert report["redshift"]["overall"]["good_fraction"] == 0.5
    assert report["redshift"]["by_class"]["oii"]["good_fraction"] == 0.5
    assert report["redshift"]["by_z_bin"]["4-5"]["n"] == 0
    assert report["redshift"]["by_z_bin"]["5-6.7"]["good_fraction"] == 0.0
    # sources selected: s0, s1, s2, s4, s5 (5 of 6 true, s3 missing) plus false s6
    assert report["detection"]["tp"] == 5 and report["detection"]["fn"] == 1 and report["detection"]["fp"] == 1
    assert report["detection"]["completeness"] == pytest.approx(5 / 6)
    assert report["detection"]["purity"] == pytest.approx(5 / 6)
    assert report["detection"]["by_class"]["false_noise"]["selected_fraction"] == 1.0
    # blends s4 (0.5), s5 (0.005) against singles 0, 0, 0.3, missing: s4 beats all, s5 beats 3 of 4 → 7/8
    assert report["blend"]["auc"] == pytest.approx(7 / 8)
    assert report["blend"]["tpr"] == 0.5 and report["blend"]["fpr"] == pytest.approx(1 / 4)
    assert report["worst"][0]["spectrum_id"] == "s3" and report["worst"][0]["z_pred"] is None
    assert report["worst"][1]["spectrum_id"] == "s1"


def test_thresholds_override_the_scanner_flags(small_truth):
    results = make_results(IDS, [0.5, 1.0, 3.0, 5.0, 0.8, 4.0, 2.0, 0.1], [0.5] * 8, [0.02] * 8,
                           is_source=[False] * 8, is_blend=[False] * 8)
    by_flags = score(results, small_truth)
    assert by_flags["detection"]["completeness"] == 0.0 and by_flags["blend"]["tpr"] == 0.0
    by_thresholds = score(results, small_truth, source_threshold=-2.0, blend_threshold=0.011)
    assert by_thresholds["detection"]["completeness"] == 1.0 and by_thresholds["detection"]["purity"] == 0.75
    assert by_thresholds["blend"]["tpr"] == 1.0 and by_thresholds["blend"]["fpr"] == 1.0
    assert by_thresholds["blend"]["auc"] == 0.5  # all scores tied


def test_detection_curve_is_consistent_with_the_threshold_decision(small_truth):
    rng = np.random.default_rng(2)
    delta_chi2 = 10.0 ** rng.uniform(-4, 0, 8)
    results = make_results(IDS, [0.5] * 8, delta_chi2, [0.0] * 8)
    report = score(results, small_truth, source_threshold=-2.0, blend_threshold=0.011)
    curve = report["detection"]["curve"]
    # the last swept threshold not below −2 selects exactly the spectra with log10 Δχ² > −2
    at = max(i for i, t in enumerate(curve["threshold"]) if t >= -2.0)
    assert curve["completeness"][at] == pytest.approx(report["detection"]["completeness"])
    assert curve["purity"][at] == pytest.approx(report["detection"]["purity"])


def test_bad_tables_are_refused_with_a_clear_message(small_truth):
    results = make_results(IDS[:2] + ["s0"], [0.5, 1.0, 0.5], [0.5] * 3, [0.0] * 3)
    with pytest.raises(UserError, match="1 duplicated spectrum_id"):
        score(results, small_truth)
    with pytest.raises(UserError, match=r"lacks column\(s\) \['z2'\]"):
        score(make_results(IDS, [0.5] * 8, [0.5] * 8, [0.0] * 8), small_truth.drop(["z2"]))
