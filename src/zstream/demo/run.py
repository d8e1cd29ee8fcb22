"""``zstream demo`` end to end: starter basis, broker, one replica, the stream with its live view, the report."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import uuid
from pathlib import Path

from zstream.demo import steps
from zstream.demo.liveview import LiveView
from zstream.testing.handles import ReplicaThread
from zstream.testing.harness import StreamHarness
from zstream.testing.traffic import json_messages

_DRAIN_TIMEOUT_S = 120.0
_REFIT_WAIT_S = 90.0


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo with the parsed ``zstream demo`` options; return the exit code of its report.

    ``args`` carries ``duration``, ``rate``, ``bootstrap_servers``, ``out``, ``n_train``, ``k``,
    ``seed``, ``metrics_port`` and ``device`` (see :mod:`zstream.cli.demo`).
    """
    args.out.mkdir(parents=True, exist_ok=True)
    _log_to_file(args.out / "service.log")
    say(f"zstream demo: {args.duration:.0f} s at {args.rate:g} spectra/s; everything goes to {args.out}/")
    training, starter_path = steps.starter_basis(args.out, args.n_train, args.k, args.seed, args.device)
    calibration = steps.calibrated_model(args.out, starter_path, args.n_train // 2, args.seed + 3, args.device)
    stream, truth = steps.stream_spectra(round(args.duration * args.rate), args.seed + 1)
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap_servers
        if bootstrap is None:
            broker = stack.enter_context(steps.embedded_broker(args.out / "broker.log"))
            bootstrap = broker.bootstrap_servers
            say(f"embedded broker (tansu, in memory) on {bootstrap}")
        prefix = f"zstream-demo-{uuid.uuid4().hex[:6]}"
        config = steps.service_config(args, bootstrap, starter_path, calibration, len(stream), prefix)
        steps.seed_archive(config.archive, training, args.n_train, args.seed + 2)
        harness = stack.enter_context(StreamHarness(config, ReplicaThread(config)))
        say("service starting: joining the consumer group (a few seconds)…")
        harness.wait_ready()
        say(f"ready: serving {harness.replica.serving_version()}; metrics on "
            f"http://127.0.0.1:{harness.replica.metrics_port}/metrics")
        _stream(harness, json_messages(stream), args, len(stream))
    results = steps.results_table(harness.results)
    return steps.report(results, truth, args.out, harness, say)


def _stream(harness: StreamHarness, messages, args: argparse.Namespace, n: int) -> None:
    """Send the stream paced at ``args.rate`` and refresh the live view until drained and a refit ran."""
    view = LiveView(harness, sys.stdout, f"zstream demo — streaming {n} spectra at {args.rate:g}/s (Ctrl-C stops)")
    harness.start_sending(list(messages), args.rate)
    drain_deadline = None
    refit_deadline = None
    while True:
        harness.poll(timeout_ms=500)
        snap = view.update()
        if harness.sending_done.is_set() and drain_deadline is None:
            drain_deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        if drain_deadline is not None and (harness.done >= n or time.monotonic() > drain_deadline):
            refit_deadline = refit_deadline or time.monotonic() + _REFIT_WAIT_S
            if sum(snap.refits.values()) > 0 or time.monotonic() > refit_deadline:
                break
        time.sleep(0.5)
    view.update(force=True)


def _log_to_file(path: Path) -> None:
    """Service and client logs go to a file so the live view stays readable."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING)


def say(text: str) -> None:
    """Print a status line right away (the live view and tqdm share the terminal)."""
    print(text, flush=True)
