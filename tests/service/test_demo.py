"""`zstream demo` with stdout piped (as in CI): progress lines, a refit outcome, a report, a clean exit, no broker left."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

DEMO_TIMEOUT_S = 240


def test_demo_runs_end_to_end_without_a_terminal(tmp_path):
    out = tmp_path / "demo"
    completed = subprocess.run(
        [sys.executable, "-m", "zstream.cli", "demo", "--duration", "10", "--rate", "3", "--n-train", "120",
         "--k", "3", "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    stdout = completed.stdout
    assert "\x1b[" not in stdout, "no screen redraws when stdout is not a terminal"
    progress = [line for line in stdout.splitlines() if re.match(r"\[\s*\d+ s\] sent \d+ results \d+", line)]
    assert len(progress) >= 2
    assert "streamed 30 spectra: 30 results, 0 dead letters" in stdout
    assert re.search(r"refits promoted \d+, rejected \d+, failed \d+", stdout)
    assert not re.search(r"promoted 0, rejected 0, failed 0", stdout), "the demo must run at least one refit"
    assert (out / "report" / "report.html").exists() and (out / "results.parquet").exists()
    port = int(re.search(r"embedded broker \(tansu, in memory\) on 127\.0\.0\.1:(\d+)", stdout).group(1))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the embedded broker is still listening"
