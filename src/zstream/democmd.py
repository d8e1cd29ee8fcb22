"""``zstream demo``: the whole system on one machine in about two minutes, no setup.

Trains a starter basis on simulated spectra, starts an embedded Kafka-protocol
broker on loopback (or uses ``--bootstrap-servers``), streams simulated spectra
through a service replica at ``--rate`` while a live view shows throughput,
latency, decisions, the serving basis and refits, then scores the results
against the simulation truth.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import uuid
from pathlib import Path

from zstream.errors import UserError

_DRAIN_TIMEOUT_S = 120.0
_REFIT_WAIT_S = 90.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the top-level parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole streaming system locally on simulated spectra (start here)",
        description=(
            "Train a starter basis on simulated spectra, start an embedded broker on loopback, stream simulated "
            "spectra through the service with a live view (rate, lag, latency, decisions, basis version, "
            "refits), let the background refit promote and hot-swap a new basis, and finish with the "
            "evaluation against the simulation truth. Leaves results, archive, logs and report under --out."
        ),
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of streaming (default 60)")
    parser.add_argument("--rate", type=float, default=2.0, help="spectra per second to stream (default 2)")
    parser.add_argument("--bootstrap-servers", help="use this Kafka cluster instead of the embedded broker")
    parser.add_argument("--out", type=Path, default=Path("zstream-demo"), help="output directory (default ./zstream-demo)")
    parser.add_argument("--n-train", type=int, default=300, help="simulated training spectra for the starter basis")
    parser.add_argument("--k", type=int, default=5, help="templates in the starter basis (default 5)")
    parser.add_argument("--seed", type=int, default=1,
                        help="simulation seed: training set SEED, stream SEED+1, archived labelled set SEED+2, "
                             "threshold tuning set SEED+3")
    parser.add_argument("--metrics-port", type=int, default=0, help="port of /metrics (default: a free port)")
    parser.add_argument("--device", default="auto", help="torch device (default auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream demo``."""
    if args.duration <= 0 or args.rate <= 0 or args.n_train < args.k:
        raise UserError("demo: need --duration > 0, --rate > 0 and --n-train ≥ --k")
    from zstream.service import demo  # torch and the service load only when the demo runs
    from zstream.service.handles import ReplicaThread
    from zstream.service.harness import StreamHarness
    from zstream.service.traffic import json_messages

    args.out.mkdir(parents=True, exist_ok=True)
    _log_to_file(args.out / "service.log")
    say(f"zstream demo: {args.duration:.0f} s at {args.rate:g} spectra/s; everything goes to {args.out}/")
    training, starter_path = demo.starter_basis(args.out, args.n_train, args.k, args.seed, args.device)
    calibration = demo.calibrated_model(args.out, starter_path, args.n_train // 2, args.seed + 3, args.device)
    stream, truth = demo.stream_spectra(round(args.duration * args.rate), args.seed + 1)
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap_servers
        if bootstrap is None:
            broker = stack.enter_context(demo.embedded_broker(args.out / "broker.log"))
            bootstrap = broker.bootstrap_servers
            say(f"embedded broker (tansu, in memory) on {bootstrap}")
        prefix = f"zstream-demo-{uuid.uuid4().hex[:6]}"
        config = demo.service_config(args, bootstrap, starter_path, calibration, len(stream), prefix)
        demo.seed_archive(config.archive, training, args.n_train, args.seed + 2)
        harness = stack.enter_context(StreamHarness(config, ReplicaThread(config)))
        say("service starting: joining the consumer group (a few seconds)…")
        harness.wait_ready()
        say(f"ready: serving {harness.replica.serving_version()}; metrics on "
            f"http://127.0.0.1:{harness.replica.metrics_port}/metrics")
        _stream(harness, json_messages(stream), args, len(stream))
    results = demo.results_table(harness.results)
    return demo.report(results, truth, args.out, harness, say)


def _stream(harness, messages, args: argparse.Namespace, n: int) -> None:
    from zstream.service.liveview import LiveView

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
