"""Calibration: thresholds by their stated criteria, the TOML path, and ``zstream calibrate`` end to end."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from evaluate_builders import make_results, make_scanned_population, make_truth

from zstream.cli import main
from zstream.errors import UserError
from zstream.evaluate.calibrate import (
    calibrate,
    max_f1_threshold,
    min_purity_threshold,
    roc_closest_threshold,
    write_thresholds,
)
from zstream.evaluate.metrics import confusion
from zstream.io import read_results, write_results
from zstream.redshift.config import ScanConfig
from zstream.redshift.reliability import ReliabilityModel


def test_separable_scores_give_a_threshold_between_the_classes():
    scores = np.array([-3.5, -3.0, -2.6, -1.4, -1.0, 0.2])
    positive = np.array([0, 0, 0, 1, 1, 1], bool)
    chosen = max_f1_threshold(scores, positive)
    assert chosen["threshold"] == pytest.approx(-2.0)
    assert chosen["f1"] == 1.0 and chosen["completeness"] == 1.0 and chosen["purity"] == 1.0


def test_max_f1_threshold_maximises_f1_over_all_cuts():
    rng = np.random.default_rng(4)
    positive = rng.random(400) < 0.8
    scores = rng.normal(np.where(positive, -1.0, -2.5), 0.6)
    chosen = max_f1_threshold(scores, positive)
    best_f1 = max(confusion(scores > t, positive)["f1"] for t in np.sort(scores) - 1e-9)
    assert chosen["f1"] == pytest.approx(best_f1)
    assert confusion(scores > chosen["threshold"], positive)["f1"] == pytest.approx(best_f1)


def test_min_purity_threshold_is_the_most_complete_cut_at_that_purity():
    rng = np.random.default_rng(6)
    positive = rng.random(500) < 0.7
    scores = rng.normal(np.where(positive, 0.7, 0.3), 0.2)
    chosen = min_purity_threshold(scores, positive, 0.95)
    cuts = [confusion(scores > t, positive) for t in np.sort(scores) - 1e-12]
    best = max(c["completeness"] for c in cuts if c["purity"] is not None and c["purity"] >= 0.95)
    at = confusion(scores > chosen["threshold"], positive)
    assert at["purity"] >= 0.95 and at["completeness"] == pytest.approx(best) == chosen["completeness"]
    with pytest.raises(UserError, match="no threshold reaches purity 1"):
        min_purity_threshold(np.r_[scores, 5.0], np.r_[positive, False], 1.0)


def test_roc_closest_threshold_is_the_roc_point_closest_to_the_ideal():
    rng = np.random.default_rng(5)
    positive = rng.random(300) < 0.3
    scores = rng.normal(np.where(positive, 0.03, 0.005), 0.01)
    chosen = roc_closest_threshold(scores, positive)
    def distance(t):
        c = confusion(scores > t, positive)
        return np.hypot(c["fpr"], 1 - c["completeness"])
    assert distance(chosen["threshold"]) == pytest.approx(min(distance(t) for t in np.sort(scores) - 1e-12))


def test_thresholds_need_both_classes():
    with pytest.raises(UserError, match="got 3 of 3"):
        max_f1_threshold(np.array([1.0, 2.0, 3.0]), np.ones(3, bool))


def _threshold_tables():
    n = 60
    rng = np.random.default_rng(8)
    is_source = np.arange(n) % 5 != 0
    is_blend = is_source & (np.arange(n) % 7 == 0)
    truth = make_truth(is_source, is_blend, np.ones(n))
    delta_chi2 = 10.0 ** rng.normal(np.where(is_source, -1.0, -3.0), 0.3)
    blend_score = np.abs(rng.normal(np.where(is_blend, 0.05, 0.002), 0.01))
    results = make_results(truth.column("spectrum_id").to_pylist(), [1.0] * n, delta_chi2, blend_score)
    return results, truth


def test_written_toml_is_read_back_by_the_scanner_config(tmp_path):
    results, truth = _threshold_tables()
    calibration = calibrate(results, truth)
    path = write_thresholds(tmp_path / "thresholds.toml", calibration, provenance="test set")
    config = ScanConfig.from_toml(path)
    assert config.source_log10_delta_chi2 == calibration["source_log10_delta_chi2"]
    assert config.blend_delta_chi2 == calibration["blend_delta_chi2"]
    assert -3.0 < config.source_log10_delta_chi2 < -1.0


def test_legacy_calibration_names_the_missing_class():
    results, truth = _threshold_tables()
    only_sources = make_truth(np.ones(60, bool), np.zeros(60, bool), np.ones(60))
    with pytest.raises(UserError, match="needs both true sources and false detections; got 60 of 60"):
        calibrate(results, only_sources)


def test_cli_calibrate_writes_a_model_that_applies_to_the_results_file(tmp_path, capsys):
    results, truth = make_scanned_population(400, seed=21)
    write_results(tmp_path / "results.parquet", results)
    pq.write_table(truth, tmp_path / "truth.parquet")
    code = main(["calibrate", "--results", str(tmp_path / "results.parquet"), "--truth",
                 str(tmp_path / "truth.parquet"), "--out", str(tmp_path / "calibration.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "p_source" in out and "Brier" in out and "wrote" in out
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["format"] == "zstream-reliability"
    assert saved["provenance"]["results"] == str(tmp_path / "results.parquet")
    applied = ReliabilityModel.load(tmp_path / "calibration.json").apply(read_results(tmp_path / "results.parquet"))
    p_source = applied.column("p_source").to_numpy()
    assert np.all((p_source >= 0) & (p_source <= 1))
    threshold = saved["targets"]["p_source"]["threshold"]
    assert applied.column("is_source").to_pylist() == list(p_source >= threshold)


def test_cli_calibrate_toml_path_and_bad_options(tmp_path, capsys):
    results, truth = _threshold_tables()
    write_results(tmp_path / "results.parquet", results)
    pq.write_table(truth, tmp_path / "truth.parquet")
    args = ["calibrate", "--results", str(tmp_path / "results.parquet"), "--truth", str(tmp_path / "truth.parquet")]
    assert main([*args, "--out", str(tmp_path / "t.toml")]) == 0
    assert "source_log10_delta_chi2" in capsys.readouterr().out
    assert ScanConfig.from_toml(tmp_path / "t.toml").blend_delta_chi2 > 0
    assert main([*args, "--out", str(tmp_path / "c.json"), "--min-purity", "1.5"]) == 2
    error = capsys.readouterr().err
    assert "--min-purity" in error and len(error.strip().splitlines()) == 1
