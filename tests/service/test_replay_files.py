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


def test_file_replay_refuses_what_the_live_service_would_dead_letter(tmp_path, basis_path):
    from types import SimpleNamespace

    import torch

    from zstream.io import encode_spectrum_json, load_basis, spectrum_records
    from zstream.service.config import ServiceConfig
    from zstream.service.processing import process_records
    from zstream.service.serving import build_serving

    spectra, _ = simulate_test(8, 63)
    spectra.wavelength[5] = spectra.wavelength[5] + 30_000.0  # redder than the basis reaches at z_max = 1.6
    write_spectra(tmp_path / "spectra.jsonl", spectra)
    out = tmp_path / "replay.parquet"
    assert main(["replay", "--input", str(tmp_path / "spectra.jsonl"), "--basis", str(basis_path),
                 "--out", str(out), *SCAN]) == 0
    replayed = {(reject.spectrum_id, reject.reason.value) for reject in read_rejects(tmp_path / "replay.rejects.parquet")}

    config = ServiceConfig(z_min=0.0, z_max=1.6, z_step=0.002)
    serving = build_serving(load_basis(basis_path), config.scan_config(), torch.device("cpu"))
    messages = [SimpleNamespace(topic="spectra", partition=0, offset=offset, timestamp=0, headers=[],
                                value=encode_spectrum_json(record))
                for offset, record in enumerate(spectrum_records(spectra))]
    live = process_records(messages, serving, max_message_bytes=config.max_message_bytes)
    dead_lettered = {(letter.spectrum_id, letter.reason.value) for letter in live.dead_letters}
    assert replayed == dead_lettered == {(spectra.spectrum_id[5], "no_overlap_with_basis")}
    assert read_results(out).column("spectrum_id").to_pylist() == live.results.column("spectrum_id").to_pylist()
