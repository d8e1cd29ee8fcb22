"""``zstream demo``: the whole system on one machine in about two minutes, no setup.

Trains a starter basis on simulated spectra, starts an embedded Kafka-protocol
broker on loopback (or uses ``--bootstrap-servers``), streams simulated spectra
through a service replica at ``--rate`` while a live view shows throughput,
latency, decisions, the serving basis and refits, then scores the results
against the simulation truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zstream.errors import UserError


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
    from zstream.demo.run import run_demo  # torch, the service and the broker load only when the demo runs

    return run_demo(args)
