"""Calibration picks thresholds by its stated criteria and writes a TOML the scanner config reads."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from evaluate_builders import make_results

from zstream.cli import main
from zstream.errors import UserError
from zstream.evaluate.calibrate import calibrate, choose_blend_threshold, choose_source_threshold, write_thresholds
from zstream.evaluate.metrics import confusion
from zstream.io import write_results
from zstream.redshift.config import ScanConfig


def test_separable_scores_give_a_threshold_between_the_classes():
    scores = np.array([-3.5, -3.0, -2.6, -1.4, -1.0, 0.2])
    positive = np.array([0, 0, 0, 1, 1, 1], bool)
    chosen = choose_source_threshold(scores, positive)
    assert chosen["threshold"] == pytest.approx(-2.0)
    assert chosen["f1"] == 1.0 and chosen["completeness"] == 1.0 and chosen["purity"] == 1.0


def test_source_threshold_maximises_f1_over_all_cuts():
    rng = np.random.default_rng(4)
    positive = rng.random(400) < 0.8
    scores = rng.normal(np.where(positive, -1.0, -2.5), 0.6)
    chosen = choose_source_threshold(scores, positive)
    best_f1 = max(confusion(scores > t, positive)["f1"] for t in np.sort(scores) - 1e-9)
    assert chosen["f1"] == pytest.approx(best_f1)
    assert confusion(scores > chosen["threshold"], positive)["f1"] == pytest.approx(best_f1)


def test_blend_threshold_is_the_roc_point_closest_to_the_ideal():
    rng = np.random.default_rng(5)
    positive = rng.random(300) < 0.3
    scores = rng.normal(np.where(positive, 0.03, 0.005), 0.01)
    chosen = choose_blend_threshold(scores, positive)
    def distance(t):
        c = confusion(scores > t, positive)
        return np.hypot(c["fpr"], 1 - c["completeness"])
    assert distance(chosen["threshold"]) == pytest.approx(min(distance(t) for t in np.sort(scores) - 1e-12))


def test_calibration_needs_both_classes():
    with pytest.raises(UserError, match="needs both true sources and false detections; got 3 of 3"):
        choose_source_threshold(np.array([1.0, 2.0, 3.0]), np.ones(3, bool))


def _labelled_tables():
    n = 60
    rng = np.random.default_rng(8)
    is_source = np.arange(n) % 5 != 0
    is_blend = is_source & (np.arange(n) % 7 == 0)
    truth = pa.table({
        "spectrum_id": [f"t{i}" for i in range(n)],
        "z": [1.0 if s else None for s in is_source],
        "source_class": ["oii" if s else "false_noise" for s in is_source],
        "is_source": is_source,
        "is_blend": is_blend,
        "z2": [2.0 if b else None for b in is_blend],
    })
    delta_chi2 = 10.0 ** rng.normal(np.where(is_source, -1.0, -3.0), 0.3)
    blend_score = np.abs(rng.normal(np.where(is_blend, 0.05, 0.002), 0.01))
    results = make_results(truth.column("spectrum_id").to_pylist(), [1.0] * n, delta_chi2, blend_score)
    return results, truth


def test_written_toml_is_read_back_by_the_scanner_config(tmp_path):
    results, truth = _labelled_tables()
    calibration = calibrate(results, truth)
    path = write_thresholds(tmp_path / "thresholds.toml", calibration, provenance="test set")
    config = ScanConfig.from_toml(path)
    assert config.source_log10_delta_chi2 == calibration["source_log10_delta_chi2"]
    assert config.blend_delta_chi2 == calibration["blend_delta_chi2"]
    assert -3.0 < config.source_log10_delta_chi2 < -1.0


def test_cli_calibrate(tmp_path, capsys):
    results, truth = _labelled_tables()
    write_results(tmp_path / "results.parquet", results)
    pq.write_table(truth, tmp_path / "truth.parquet")
    code = main(["calibrate", "--results", str(tmp_path / "results.parquet"), "--truth",
                 str(tmp_path / "truth.parquet"), "--out", str(tmp_path / "t.toml")])
    assert code == 0
    assert "source_log10_delta_chi2" in capsys.readouterr().out
    assert ScanConfig.from_toml(tmp_path / "t.toml").blend_delta_chi2 > 0
