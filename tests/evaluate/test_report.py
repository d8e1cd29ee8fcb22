"""Reports are written, parseable and complete; the CLI runs simulate → evaluate end to end."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from evaluate_builders import make_results

from zstream.cli import main
from zstream.evaluate import headline, score, write_report
from zstream.evaluate.gallery import GalleryItem
from zstream.evaluate.report import summary_line
from zstream.io import write_results

IDS = [f"s{i}" for i in range(8)]


def test_report_json_and_html_with_plots_and_gallery(small_truth, tmp_path):
    results = make_results(IDS, [0.5, 4.4, 3.0, 5.0, 0.8, 4.0, 2.0, 0.1], [0.5] * 6 + [1e-4, 0.1],
                           [0.0, 0.0, 0.3, 0.0, 0.5, 0.02, 0.0, 0.0])
    report = score(results, small_truth, source_threshold=-2.0, blend_threshold=0.011)
    wave = np.linspace(4600, 9350, 100)
    item = GalleryItem("s1", "oii", 1.0, 4.4, wave, np.ones(100), np.ones(100), model=np.ones(100),
                       z_grid=np.linspace(0, 6.7, 50), chi2=np.linspace(10, 20, 50))
    written = write_report(report, tmp_path, results=results, truth=small_truth, gallery=[item])
    loaded = json.loads(written["json"].read_text())
    assert loaded["redshift"]["overall"]["good_fraction"] == report["redshift"]["overall"]["good_fraction"]
    assert {"counts", "thresholds", "redshift", "detection", "blend", "worst"} <= set(loaded)
    assert "reliability" not in loaded  # the results carry no probabilities
    page = written["html"].read_text()
    for key in ("z_scatter", "dz_histogram", "detection", "blend_roc", "worst_00"):
        assert written[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{written[key].name}"' in page
    assert "Bourahma et al. 2026 (MUSE)" in page


def _known_report(small_truth):
    """s1 wrong (GF 3/4, catastrophic 1/4); s6 rejected, s7 a false positive (purity 6/7); blend scores
    rank blends above 7 of the 8 single-source pairs (AUC 7/8) and flag 1 of 4 singles (FPR 1/4)."""
    results = make_results(IDS, [0.5, 4.4, 3.0, 5.0, 0.8, 4.0, 2.0, 0.1], [0.5] * 6 + [1e-4, 0.1],
                           [0.0, 0.0, 0.3, 0.0, 0.5, 0.02, 0.0, 0.0])
    return results, score(results, small_truth, source_threshold=-2.0, blend_threshold=0.011)


def test_headline_gives_the_figures_known_by_construction(small_truth):
    _, report = _known_report(small_truth)
    assert headline(report) == {
        "good_fraction": 0.75, "mae": 0.0, "catastrophic_rate": 0.25, "completeness": 1.0,
        "purity": pytest.approx(6 / 7), "blend_auc": 0.875, "blend_tpr": 1.0, "blend_fpr": 0.25,
    }


def test_report_opens_with_a_sentence_not_a_raw_dict(small_truth, tmp_path):
    results, report = _known_report(small_truth)
    page = write_report(report, tmp_path, results=results, truth=small_truth)["html"].read_text()
    assert ("<p>8 truth spectra: 6 true sources (2 blends), 2 false detections; 8 with a result, 0 missing. "
            "Sources: log10 delta_chi2 &gt; -2. Blends: blend_score &gt; 0.011. GF tolerance 0.005.</p>") in page
    assert "{&#x27;" not in page and "{'" not in page
    own = summary_line(score(results, small_truth))
    assert "Sources: scanner is_source. Blends: scanner is_blend." in own


def test_report_shows_calibration_of_the_probabilities(small_truth, tmp_path):
    results = make_results(IDS, [0.5, 4.4, 3.0, 5.0, 0.8, 4.0, 2.0, 0.1], [0.5] * 8, [0.0] * 8,
                           p_source=[0.9, 0.8, 0.9, 0.95, 0.9, 0.7, 0.2, 0.6],
                           p_z_ok=[0.9, 0.3, 0.8, 0.9, 0.8, 0.6, 0.1, 0.2],
                           p_blend=[0.1, 0.2, 0.1, 0.05, 0.7, 0.4, 0.0, 0.0])
    written = write_report(score(results, small_truth), tmp_path, results=results, truth=small_truth)
    reliability = json.loads(written["json"].read_text())["reliability"]
    assert set(reliability) == {"p_source", "p_z_ok", "p_blend"}
    assert reliability["p_source"]["n"] == 8 and reliability["p_blend"]["n"] == 6  # true sources only
    assert reliability["p_blend"]["auc"] == 1.0
    expected_brier = np.mean((np.array([0.9, 0.8, 0.9, 0.95, 0.9, 0.7, 0.2, 0.6]) - np.r_[np.ones(6), 0, 0]) ** 2)
    assert reliability["p_source"]["brier"] == pytest.approx(expected_brier)
    page = written["html"].read_text()
    assert written["reliability"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'src="{written["reliability"].name}"' in page and "Calibrated probabilities" in page


def test_cli_simulate_then_evaluate_perfect_results(tmp_path, capsys):
    assert main(["simulate", "--n", "40", "--seed", "3", "--out", str(tmp_path / "sim")]) == 0
    truth = pq.read_table(tmp_path / "sim" / "truth.parquet")
    rows = truth.to_pylist()
    results = make_results(
        [r["spectrum_id"] for r in rows],
        [r["z"] if r["z"] is not None else 1.0 for r in rows],
        [0.5 if r["is_source"] else 1e-4 for r in rows],
        [0.5 if r["is_blend"] else 0.0 for r in rows],
    )
    write_results(tmp_path / "results.parquet", results)
    code = main(["evaluate", "--results", str(tmp_path / "results.parquet"), "--truth",
                 str(tmp_path / "sim" / "truth.parquet"), "--out", str(tmp_path / "report")])
    assert code == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["redshift"]["overall"]["good_fraction"] == 1.0
    assert report["detection"]["purity"] == 1.0 and report["blend"]["auc"] == 1.0
    assert "good_fraction" in capsys.readouterr().out


def test_cli_reports_a_missing_truth_file_in_one_line(tmp_path, capsys):
    write_results(tmp_path / "r.parquet", make_results(["a"], [0.1], [0.5], [0.0]))
    code = main(["evaluate", "--results", str(tmp_path / "r.parquet"), "--truth", str(tmp_path / "nope.parquet"),
                 "--out", str(tmp_path / "rep")])
    assert code == 2
    error = capsys.readouterr().err
    assert "nope.parquet" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
