"""``zstream bench stream``: the service end to end through a real broker, against the raw scan.

Same spectra, same basis, same scan settings, one run:

1. baseline: :meth:`Scanner.scan` in batches of ``--batch-size`` (spectra/s), just before
   and just after phase 2 (the mean, since load on a shared machine drifts);
2. throughput: all spectra produced at once to a service replica (embedded
   broker on loopback unless ``--bootstrap-servers``), timed from the first send
   to the last result read back (sustained spectra/s); the ratio to 1. is the
   service overhead;
3. latency: fresh copies produced at ``--rate`` (default 80% of the sustained
   rate) for ``--duration`` seconds; p50/p99 of send → result as a downstream
   consumer sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zstream.io import SpectrumBatch, save_basis
from zstream.service.config import ServiceConfig

_WAIT_TIMEOUT_S = 600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``stream`` to ``zstream bench``."""
    parser = subparsers.add_parser(
        "stream",
        help="service throughput and end-to-end latency through a real broker vs the raw Scanner.scan",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=240, help="spectra for the baseline and throughput phases")
    parser.add_argument("--rate", type=float, help="latency-phase rate in spectra/s (default: 80%% of sustained)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the latency phase (default 30)")
    parser.add_argument("--k", type=int, default=5, help="templates in the benchmark basis")
    parser.add_argument("--batch-size", type=int, default=16, help="service batch size (also the baseline's)")
    parser.add_argument("--max-wait-ms", type=int, default=200, help="service batch fill wait")
    parser.add_argument("--device", default="auto", help="torch device")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of the embedded one")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the three phases and print the comparison."""
    from zstream.demo.steps import DEMO_GRID, DEMO_SIM
    from zstream.redshift import Scanner, train_basis
    from zstream.sim import simulate

    training, _ = simulate(300, seed=101, config=DEMO_SIM)
    basis = train_basis(training, args.k, DEMO_GRID, max_iter=40, sequential_iter=10, seed=101, device=args.device,
                        progress=True, version="bench-stream")
    spectra, _ = simulate(args.n, seed=102, config=DEMO_SIM)
    with tempfile.TemporaryDirectory(prefix="zstream-bench-stream-") as folder:
        basis_path = Path(folder) / "basis.parquet"
        save_basis(basis, basis_path)
        config = _config(args, basis_path)
        scanner = Scanner(basis, config.scan_config(), device=args.device)
        figures = _through_service(args, config, spectra, lambda: _baseline(scanner, spectra, args.batch_size))
    figures |= {"n": args.n, "k": args.k, "batch_size": args.batch_size}
    _print(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _config(args: argparse.Namespace, basis_path: Path) -> ServiceConfig:
    prefix = f"bench-stream-{uuid.uuid4().hex[:6]}"
    return ServiceConfig(
        **({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}),  # else: embedded
        input_topic=f"{prefix}.spectra",
        output_topic=f"{prefix}.results", dlq_topic=f"{prefix}.dlq", basis_topic=f"{prefix}.basis", group_id=prefix,
        session_timeout_ms=6000, heartbeat_interval_ms=500, basis=basis_path, archive=None, refit_enabled=False,
        batch_size=args.batch_size, max_wait_ms=args.max_wait_ms, device=args.device, z_step=0.001,
        metrics_host="127.0.0.1", metrics_port=0,
    )


def _baseline(scanner, spectra: SpectrumBatch, batch_size: int) -> float:
    """Spectra per second of Scanner.scan alone (after one warm-up batch)."""
    scanner.scan(spectra.take(range(min(batch_size, len(spectra)))))
    started = time.perf_counter()
    for start in tqdm(range(0, len(spectra), batch_size), desc="baseline: Scanner.scan", unit="batch", file=sys.stderr):
        scanner.scan(spectra.take(range(start, min(start + batch_size, len(spectra)))))
    return len(spectra) / (time.perf_counter() - started)


def _through_service(
    args: argparse.Namespace, config: ServiceConfig, spectra: SpectrumBatch, baseline: Callable[[], float]
) -> dict:
    """Baseline, throughput, baseline again (load on a shared machine drifts), then latency."""
    from zstream.testing.broker import EmbeddedBroker
    from zstream.testing.handles import ReplicaProcess
    from zstream.testing.harness import StreamHarness

    with contextlib.ExitStack() as stack:
        if not args.bootstrap_servers:
            broker = stack.enter_context(EmbeddedBroker())
            config = dataclasses.replace(config, bootstrap_servers=broker.bootstrap_servers)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zstream-bench-serve-")))
        harness = stack.enter_context(StreamHarness(config, ReplicaProcess(config, folder / "serve.log")))
        harness.wait_ready()
        _send_and_wait(harness, _renamed(spectra, args.batch_size, "warm-up"), None, "warm-up batch")
        raw_before = baseline()
        replica = harness.replica
        scan_before = replica.metric("zstream_scan_duration_seconds_sum")
        batch_before = replica.metric("zstream_batch_duration_seconds_sum")
        started = time.time()
        _send_and_wait(harness, spectra, None, "throughput: flat out")
        wall = max(harness.arrived_at.values()) - started
        sustained = len(spectra) / wall
        scan_seconds = replica.metric("zstream_scan_duration_seconds_sum") - scan_before
        batch_seconds = replica.metric("zstream_batch_duration_seconds_sum") - batch_before
        raw_after = baseline()
        raw_rate = (raw_before + raw_after) / 2
        rate = args.rate or 0.8 * sustained
        keys_before = set(harness.arrived_at)
        copies = _renamed(spectra, max(1, round(rate * args.duration)), "latency")
        _send_and_wait(harness, copies, rate, f"latency at {rate:.1f} spectra/s")
        latencies = np.array([harness.arrived_at[key] - harness.sent_at[key]
                              for key in harness.arrived_at if key not in keys_before])
    return {
        "raw_scan_spectra_per_s": raw_rate,
        "raw_scan_before_after": [raw_before, raw_after],
        "service_spectra_per_s": sustained,
        "service_overhead": raw_rate / sustained - 1.0,
        "in_service_overhead": wall / scan_seconds - 1.0,
        "scan_share_of_batch_time": scan_seconds / batch_seconds,
        "latency_rate_spectra_per_s": rate,
        "latency_n": int(latencies.size),
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p99_s": float(np.percentile(latencies, 99)),
    }


def _send_and_wait(harness, spectra: SpectrumBatch, rate: float | None, what: str) -> None:
    """Produce ``spectra`` (at ``rate``, or flat out) and read back until all are answered."""
    from zstream.testing.traffic import json_messages

    total = harness.done + len(spectra)
    harness.sending_done.clear()
    harness.start_sending(list(json_messages(spectra)), rate=rate)
    deadline = time.monotonic() + _WAIT_TIMEOUT_S
    with tqdm(total=total, initial=harness.done, desc=what, unit=" spectra", file=sys.stderr) as bar:
        while harness.done < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: only {harness.done} of {total} results after {_WAIT_TIMEOUT_S:.0f} s")
            harness.poll(timeout_ms=200)
            bar.update(harness.done - bar.n)


def _renamed(batch: SpectrumBatch, n: int, tag: str) -> SpectrumBatch:
    """``n`` spectra cycling through ``batch`` with fresh ids (so each result is matched to its send)."""
    rows = [i % len(batch) for i in range(n)]
    renamed = [f"{tag}-{i}-{batch.spectrum_id[row]}" for i, row in enumerate(rows)]
    return dataclasses.replace(batch.take(rows), spectrum_id=renamed, z=None, extra=None)  # the bare spectra, as before


def _print(figures: dict) -> None:
    before, after = figures["raw_scan_before_after"]
    print(f"raw Scanner.scan        {figures['raw_scan_spectra_per_s']:8.2f} spectra/s  "
          f"(mean of {before:.2f} before and {after:.2f} after; n={figures['n']}, k={figures['k']}, "
          f"batches of {figures['batch_size']})")
    print(f"through the service     {figures['service_spectra_per_s']:8.2f} spectra/s  (broker, JSON, produce+flush+commit)")
    print(f"service overhead        {100 * figures['service_overhead']:8.1f} %  (raw / service − 1)")
    print(f"in-service overhead     {100 * figures['in_service_overhead']:8.1f} %  "
          "(service wall time / its own scan time − 1, same window)")
    print(f"scan share of batch     {100 * figures['scan_share_of_batch_time']:8.1f} %")
    print(f"latency at {figures['latency_rate_spectra_per_s']:.1f}/s       p50 {figures['latency_p50_s']:.2f} s   "
          f"p99 {figures['latency_p99_s']:.2f} s   ({figures['latency_n']} spectra, send → result)")
