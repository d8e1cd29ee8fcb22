"""`zstream demo` with stdout piped (as in CI): every spectrum answered, a refit run, a report, a clean exit, no broker left."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

from zstream.io import read_results

DEMO_TIMEOUT_S = 240


def test_demo_runs_end_to_end_without_a_terminal(tmp_path):
    out = tmp_path / "demo"
    completed = subprocess.run(
        [sys.executable, "-m", "zstream.cli", "demo", "--duration", "10", "--rate", "3", "--n-train", "120",
         "--k", "3", "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "\x1b[" not in completed.stdout, "no screen redraws when stdout is not a terminal"
    outcome = json.loads((out / "outcome.json").read_text())
    assert (outcome["sent"], outcome["results"], outcome["dead_letters"]) == (30, 30, 0)
    results = read_results(out / "results.parquet")
    assert results.num_rows == 30 and len(set(results.column("spectrum_id").to_pylist())) == 30
    assert sum(outcome["refits"].values()) >= 1, "the demo must run at least one refit"
    assert "demo-starter" in set(results.column("basis_version").to_pylist())
    assert 0.0 <= outcome["headline"]["completeness"] <= 1.0
    assert (out / "report" / "report.html").exists() and (out / "report" / "report.json").exists()
    broker = re.search(r"127\.0\.0\.1:(\d+)", completed.stdout)
    assert broker, "the demo names the address of its embedded broker"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(broker.group(1)))) != 0, "the embedded broker is still listening"
