"""`zstream replay` of a spectrum file is deterministic and hands its results to the evaluation report."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from zstream.cli import main
from zstream.io import read_rejects, read_results, write_spectra

from service_builders import simulate_test

SCAN = ["--z-min", "0", "--z-max", "1.6", "--z-step", "0.002", "--device", "cpu"]


def test_replay_file_is_deterministic_and_scored_against_truth(tmp_path, basis_path, capsys):
    spectra, truth = simulate_test(12, 61)
    spectra.spectrum_id[3] = spectra.spectrum_id[2]  # a duplicate id: refused by io, kept in the rejects
    write_spectra(tmp_path / "spectra.jsonl", spectra)
    pq.write_table(truth, tmp_path / "truth.parquet")
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"replay-{run}.parquet"
        assert main(["replay", "--input", str(tmp_path / "spectra.jsonl"), "--basis", str(basis_path),
                     "--out", str(out), "--truth", str(tmp_path / "truth.parquet"), *SCAN]) == 0
        outputs.append(read_results(out))
    assert outputs[0].equals(outputs[1])
    assert outputs[0].num_rows + len(read_rejects(tmp_path / "replay-a.rejects.parquet")) == len(spectra)
    report = json.loads((tmp_path / "replay-a-report" / "report.json").read_text())
    assert report and "report:" in capsys.readouterr().out


def test_replay_applies_the_calibration_it_is_given(tmp_path, basis_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))
    from evaluate_builders import make_scanned_population

    from zstream.evaluate.calibrate import fit_reliability

    fit_reliability(*make_scanned_population(400, seed=3)).save(tmp_path / "calibration.json")
    spectra, _ = simulate_test(6, 62)
    write_spectra(tmp_path / "spectra.parquet", spectra)
    out = tmp_path / "replay.parquet"
    assert main(["replay", "--input", str(tmp_path / "spectra.parquet"), "--basis", str(basis_path),
                 "--calibration", str(tmp_path / "calibration.json"), "--out", str(out), *SCAN]) == 0
    results = read_results(out)
    probabilities = results.column("p_source").to_pylist()
    assert all(p is not None and 0.0 <= p <= 1.0 for p in probabilities)
    threshold = json.loads((tmp_path / "calibration.json").read_text())["targets"]["p_source"]["threshold"]
    assert results.column("is_source").to_pylist() == [p >= threshold for p in probabilities]
