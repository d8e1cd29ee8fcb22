"""``zstream validate`` reports rejects by reason, writes them and the clean spectra, and sets the exit status."""

import orjson

from zstream.cli import main
from zstream.io import Reason, read_rejects, read_spectra

GOOD = {"spectrum_id": "good", "wavelength": [5000.0, 5001.0, 5002.0], "flux": [1.0, None, 3.0], "ivar": [1.0, 1.0, 1.0]}
UNSORTED = GOOD | {"spectrum_id": "unsorted", "wavelength": [5002.0, 5001.0, 5000.0]}


def _write_jsonl(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_validate_writes_rejects_and_clean_spectra(tmp_path, capsys):
    _write_jsonl(tmp_path / "in.jsonl", [orjson.dumps(GOOD), b"{broken", orjson.dumps(UNSORTED)])
    status = main(["validate", str(tmp_path / "in.jsonl"), "--rejects", str(tmp_path / "rejects.parquet"),
                   "--output", str(tmp_path / "clean.parquet"), "--batch-size", "2"])
    assert status == 1
    report = capsys.readouterr().out
    assert "1 accepted, 2 rejected" in report and "1 NaN/inf pixels masked" in report
    assert [r.reason for r in read_rejects(tmp_path / "rejects.parquet")] == [Reason.INVALID_JSON, Reason.UNSORTED_WAVELENGTH]
    clean, rejects = read_spectra(tmp_path / "clean.parquet")
    assert clean.spectrum_id == ["good"] and rejects == []
    assert clean.ivar[0].tolist() == [1.0, 0.0, 1.0]


def test_validate_returns_zero_when_everything_is_accepted(tmp_path, capsys):
    _write_jsonl(tmp_path / "in.jsonl", [orjson.dumps(GOOD)])
    assert main(["validate", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "clean.jsonl")]) == 0
    assert read_spectra(tmp_path / "clean.jsonl")[0].spectrum_id == ["good"]


def test_validate_reports_unusable_input_in_one_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "absent.parquet")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("zstream validate: error:")
