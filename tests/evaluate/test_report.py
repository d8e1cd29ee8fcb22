"""Reports are written, parseable and complete; the CLI runs simulate → evaluate end to end."""

import json

import numpy as np
import pyarrow.parquet as pq
from evaluate_builders import make_results

from zstream.cli import main
from zstream.evaluate import headline, score, write_report
from zstream.evaluate.gallery import GalleryItem
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
    assert set(loaded) == {"counts", "thresholds", "redshift", "detection", "blend", "worst"}
    page = written["html"].read_text()
    for key in ("z_scatter", "dz_histogram", "detection", "blend_roc", "worst_00"):
        assert written[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{written[key].name}"' in page
    assert "seed 002" in page


def test_headline_picks_the_quoted_figures(small_truth):
    report = score(make_results(IDS, [0.5] * 8, [0.5] * 8, [0.0] * 8), small_truth)
    figures = headline(report)
    assert figures["good_fraction"] == report["redshift"]["overall"]["good_fraction"]
    assert figures["blend_auc"] == report["blend"]["auc"]


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
