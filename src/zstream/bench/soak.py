"""``zstream bench soak``: drive ``zstream serve`` at a fixed rate for a bounded time and watch it.

The soak starts a real service process against a broker on loopback (the
embedded one unless ``--bootstrap-servers`` is given), produces simulated
spectra at ``--rate`` for ``--duration`` seconds, reads every result and dead
letter back, and samples the consumer lag and the service's resident memory
every ``--sample-every`` seconds. It reports sustained throughput, end-to-end
latency p50/p99 (send time → result record timestamp), lag and
RSS over time, whether RSS grew beyond noise and lag stayed bounded, and the
ledger check (every input answered). The baseline is the same spectra through
:meth:`Scanner.scan` in this process: the ratio says how much of the raw scan
capacity the soak rate uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.io import Basis, SpectrumBatch, encode_spectrum_json, save_basis, spectrum_records
from zstream.service.config import ServiceConfig, env_of, settings
from zstream.service.message import Message, send
from zstream.service.metrics import CONSUMER_LAG
from zstream.service.topics import create_topics
from zstream.testing.broker import EmbeddedBroker, free_loopback_port
from zstream.testing.traffic import TopicReader

SOAK_GRID = LogGrid(3.2, 3.97, 5e-4)
"""A coarse rest grid (about 1540 pixels): small bases keep scans cheap on a CPU box."""


def starter_basis(n_train: int = 150, k: int = 3, *, grid: LogGrid = SOAK_GRID, seed: int = 11, max_iter: int = 60,
                  version: str = "soak-v1") -> Basis:
    """A quick basis fitted to simulated sources at their true redshift (a stand-in for a production basis).

    Parameters
    ----------
    n_train : int
        Simulated spectra drawn (only the true sources among them are used).
    k : int
        Number of templates.
    grid : LogGrid
        Rest-frame grid of the templates.
    seed : int
        Seed of the simulation and of the NMF start.
    max_iter : int
        Nearly-NMF iterations of the joint fit (a third of that per sequential stage).
    version : str
        Version id of the basis.

    Returns
    -------
    Basis
        Templates of shape ``(k, grid.n_pixels)``.
    """
    from zstream.redshift import train_basis  # torch loads only when a soak or test needs it
    from zstream.sim import simulate

    batch, _ = simulate(n_train, seed=seed)
    return train_basis(batch, k, grid, max_iter=max_iter, sequential_iter=max(1, max_iter // 3), seed=seed,
                       device="cpu", progress=False, version=version)


def serve_environment(config: ServiceConfig) -> dict[str, str]:
    """Environment that makes a ``zstream serve`` child process use exactly ``config`` (ZSTREAM_* variables)."""
    env = dict(os.environ)
    for item in settings():
        value = getattr(config, item.name)
        if value is not None:
            env[env_of(item.name)] = str(value)
    return env


def resident_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` (Linux ``/proc``), or None where unavailable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def baseline_rate(basis: Basis, config: ServiceConfig, pool: SpectrumBatch) -> float:
    """Spectra per second of :meth:`Scanner.scan` alone on ``pool``, in batches of the service's size."""
    from zstream.redshift import Scanner

    scanner = Scanner(basis, config.scan_config(), device=config.device)
    batches = [pool.take(range(start, min(start + config.batch_size, len(pool))))
               for start in range(0, len(pool), config.batch_size)]
    scanner.scan(batches[0])  # warm-up: kernels, caches
    started = time.perf_counter()
    for batch in batches:
        scanner.scan(batch)
    return len(pool) / (time.perf_counter() - started)


@dataclass
class Sample:
    """One look at the running service."""

    t_s: float
    sent: int
    answered: int
    backlog: int
    consumer_lag: float | None
    rss_mb: float | None


@dataclass
class SoakReport:
    """What a soak measured; :attr:`memory_flat` and :attr:`lag_bounded` are its verdicts."""

    rate: float
    duration_s: float
    sent: int
    answered: int
    missing: int
    duplicated: int
    dead_letters: int
    throughput: float
    latency_p50_s: float
    latency_p99_s: float
    baseline_scan_rate: float
    rss_growth_mb: float | None
    rss_noise_mb: float | None
    rss_slope_mb_per_h: float | None
    backlog_slope_per_s: float
    exit_code: int | None
    samples: list[Sample] = field(default_factory=list)

    @property
    def memory_flat(self) -> bool:
        """RSS of the second half no higher than the first half's by more than its noise (or 5%)."""
        if self.rss_growth_mb is None:
            return True
        first = [s.rss_mb for s in self.samples[: max(1, len(self.samples) // 2)] if s.rss_mb]
        return self.rss_growth_mb <= max(self.rss_noise_mb or 0.0, 0.05 * float(np.median(first)))

    @property
    def lag_bounded(self) -> bool:
        """The backlog did not trend upward by more than 2% of the input rate over the second half."""
        return self.backlog_slope_per_s <= 0.02 * self.rate

    def lines(self) -> list[str]:
        """The human-readable report."""
        table = ["    t [s]     sent  answered  backlog  consumer_lag  RSS [MB]"]
        table += [f"  {s.t_s:7.0f} {s.sent:8d} {s.answered:9d} {s.backlog:8d} "
                  f"{'—' if s.consumer_lag is None else f'{s.consumer_lag:.0f}':>13} "
                  f"{'—' if s.rss_mb is None else f'{s.rss_mb:.1f}':>9}" for s in self.samples]
        growth = "n/a" if self.rss_growth_mb is None else (
            f"{self.rss_growth_mb:+.1f} MB (noise {self.rss_noise_mb:.1f} MB; 2nd-half trend "
            f"{self.rss_slope_mb_per_h:+.1f} MB/h)")
        return table + [
            f"offered rate            {self.rate:.2f} spectra/s for {self.duration_s:.0f} s ({self.sent} sent)",
            f"sustained throughput    {self.throughput:.2f} spectra/s answered (first to last sample of the window)",
            f"end-to-end latency      p50 {self.latency_p50_s:.3f} s, p99 {self.latency_p99_s:.3f} s",
            f"baseline Scanner.scan   {self.baseline_scan_rate:.2f} spectra/s; offered/baseline = "
            f"{self.rate / self.baseline_scan_rate:.2f}",
            f"RSS growth (2nd − 1st half median)  {growth}: {'flat' if self.memory_flat else 'GROWING'}",
            f"backlog trend (2nd half)  {self.backlog_slope_per_s:+.3f} spectra/s: "
            f"{'bounded' if self.lag_bounded else 'GROWING'}",
            f"ledger                  {self.missing} missing, {self.duplicated} duplicated, "
            f"{self.dead_letters} dead letters; service exit code {self.exit_code}",
        ]


class _ResultWatcher(threading.Thread):
    """Reads the output and DLQ topics in the background: answers per id and their latencies."""

    def __init__(self, bootstrap_servers: str, topics: list[str], sent_at: dict[str, float]):
        super().__init__(name="soak-results", daemon=True)
        self.reader = TopicReader(KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None), topics)
        self.sent_at = sent_at
        self.answers: Counter = Counter()
        self.latencies: list[float] = []
        self.dead_letters = 0
        self.dlq_topic = topics[1]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for record in self.reader.poll(timeout_ms=200):
                spectrum_id = (record.key or b"").decode("utf-8", "replace")
                self.answers[spectrum_id] += 1
                self.dead_letters += record.topic == self.dlq_topic
                if spectrum_id in self.sent_at and self.answers[spectrum_id] == 1:
                    self.latencies.append(record.timestamp / 1000.0 - self.sent_at[spectrum_id])
        self.reader.close()


def _stamped(pool: SpectrumBatch, count: int, sent_at: dict[str, float]) -> Iterator[Message]:
    """``count`` JSON messages cycling through ``pool`` under fresh ids, each stamped with its send time."""
    records = list(spectrum_records(pool))
    for number in range(count):
        spectrum_id = f"soak-{number:07d}"
        value = encode_spectrum_json(records[number % len(records)] | {"spectrum_id": spectrum_id})
        sent_at[spectrum_id] = time.time()
        yield Message(spectrum_id.encode(), value)


def _consumer_lag(port: int) -> float | None:
    """Sum of ``zstream_consumer_lag`` over partitions, scraped from the service."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except (urllib.error.URLError, OSError):
        return None
    return sum(sample.value for family in text_string_to_metric_families(text) if family.name == CONSUMER_LAG
               for sample in family.samples)


def _wait_ready(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"soak: the service exited with code {process.returncode} while starting")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise UserError(f"soak: the service was not ready within {timeout_s:.0f} s")


def _summarise(samples: list[Sample], watcher: _ResultWatcher, sent: int, rate: float, duration_s: float,
               baseline: float, exit_code: int | None) -> SoakReport:
    reached = next((i for i, s in enumerate(samples) if s.t_s >= duration_s), len(samples) - 1)
    in_window = samples[: reached + 1]
    half = in_window[len(in_window) // 2:]
    slope = float(np.polyfit([s.t_s for s in half], [s.backlog for s in half], 1)[0]) if len(half) >= 2 else 0.0
    rss = [s.rss_mb for s in in_window if s.rss_mb is not None]
    growth = noise = rss_slope = None
    if len(rss) >= 4:
        first, second = rss[: len(rss) // 2], rss[len(rss) // 2:]
        growth = float(np.median(second) - np.median(first))
        noise = float(np.max(first) - np.min(first))
        timed = [(sample.t_s, sample.rss_mb) for sample in half if sample.rss_mb is not None]
        rss_slope = float(np.polyfit(*zip(*timed), 1)[0]) * 3600.0 if len(timed) >= 2 else None
    span_s = in_window[-1].t_s - in_window[0].t_s if len(in_window) >= 2 else math.nan
    throughput = (in_window[-1].answered - in_window[0].answered) / span_s if span_s > 0 else math.nan
    latencies = np.array(watcher.latencies) if watcher.latencies else np.array([np.nan])
    answered_ids = set(watcher.answers)
    return SoakReport(
        rate=rate, duration_s=duration_s, sent=sent, answered=len(answered_ids & set(watcher.sent_at)),
        missing=len(set(watcher.sent_at) - answered_ids),
        duplicated=sum(1 for count in watcher.answers.values() if count > 1),
        dead_letters=watcher.dead_letters, throughput=throughput,
        latency_p50_s=float(np.percentile(latencies, 50)), latency_p99_s=float(np.percentile(latencies, 99)),
        baseline_scan_rate=baseline, rss_growth_mb=growth, rss_noise_mb=noise,
        rss_slope_mb_per_h=rss_slope, backlog_slope_per_s=slope,
        exit_code=exit_code, samples=samples,
    )


def run_soak(config: ServiceConfig, *, rate: float, duration_s: float, sample_every_s: float, pool_size: int,
             drain_s: float, workdir: Path) -> SoakReport:
    """Run one soak: start ``zstream serve`` with ``config``, offer ``rate`` spectra/s for ``duration_s``.

    Parameters
    ----------
    config : ServiceConfig
        Service settings; topics, group and metrics port are filled in here.
    rate : float
        Offered spectra per second.
    duration_s : float
        Length of the steady window.
    sample_every_s : float
        Interval of the lag and RSS samples.
    pool_size : int
        Distinct simulated spectra cycled through (under fresh ids).
    drain_s : float
        Longest wait after the window for the last answers.
    workdir : Path
        Where the basis and the service log go.

    Returns
    -------
    SoakReport
    """
    from zstream.sim import simulate

    pool, _ = simulate(pool_size, seed=7)
    basis = starter_basis()
    basis_path = workdir / "basis.parquet"
    save_basis(basis, basis_path)
    prefix = f"soak{uuid.uuid4().hex[:6]}"
    config = dataclasses.replace(
        config, input_topic=f"{prefix}.spectra", output_topic=f"{prefix}.results", dlq_topic=f"{prefix}.dlq",
        basis_topic=f"{prefix}.basis", group_id=f"{prefix}.group", basis=basis_path, metrics_host="127.0.0.1",
        metrics_port=free_loopback_port(),
    )
    print("measuring the Scanner.scan baseline…", file=sys.stderr)
    baseline = baseline_rate(basis, config, pool)
    create_topics(config.bootstrap_servers, [config.input_topic, config.output_topic, config.dlq_topic],
                  partitions=config.topic_partitions)
    log_path = workdir / "service.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "zstream.cli", "serve"], env=serve_environment(config),
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    sent_at: dict[str, float] = {}
    watcher = _ResultWatcher(config.bootstrap_servers, [config.output_topic, config.dlq_topic], sent_at)
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, linger_ms=5,
                             max_request_size=config.max_message_bytes)
    samples: list[Sample] = []
    exit_code = None
    try:
        print(f"waiting for the service (log: {log_path})…", file=sys.stderr)
        _wait_ready(config.metrics_port, process, timeout_s=180)
        watcher.start()
        count = int(round(rate * duration_s))
        traffic = threading.Thread(target=send, args=(producer, config.input_topic, _stamped(pool, count, sent_at)),
                                   kwargs={"rate": rate}, name="soak-traffic", daemon=True)
        started = time.monotonic()
        traffic.start()
        with tqdm(total=count, desc="soak", unit="spectra", file=sys.stderr) as bar:
            while True:
                time.sleep(max(0.0, started + (len(samples) + 1) * sample_every_s - time.monotonic()))
                answered = sum(1 for spectrum_id in list(watcher.answers) if spectrum_id in sent_at)
                rss = resident_bytes(process.pid)
                samples.append(Sample(time.monotonic() - started, len(sent_at), answered, len(sent_at) - answered,
                                      _consumer_lag(config.metrics_port), None if rss is None else rss / 2**20))
                bar.update(answered - bar.n)
                bar.set_postfix(backlog=samples[-1].backlog, rss_mb=f"{samples[-1].rss_mb or 0:.0f}")
                window_over = samples[-1].t_s >= duration_s
                if window_over and (answered >= count or samples[-1].t_s >= duration_s + drain_s):
                    break
                if process.poll() is not None:
                    raise UserError(f"soak: the service exited with code {process.returncode}; see {log_path}")
        traffic.join(timeout=60)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                exit_code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait(timeout=10)
        watcher.stop.set()
        watcher.join(timeout=10)
        producer.close(timeout=10)
    return _summarise(samples, watcher, len(sent_at), rate, duration_s, baseline, exit_code)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``zstream bench soak``."""
    parser = subparsers.add_parser(
        "soak", help="drive zstream serve at a fixed rate for a bounded time: throughput, latency, lag and RSS",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=30.0, help="offered spectra per second (default 30)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of steady traffic (default 120)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between lag/RSS samples (default 10)")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="longest wait for the last answers after the window (default 60 s)")
    parser.add_argument("--pool", type=int, default=200, help="distinct simulated spectra cycled through (default 200)")
    parser.add_argument("--batch-size", type=int, default=32, help="service batch size (default 32)")
    parser.add_argument("--max-wait-ms", type=int, default=500, help="service batch fill wait (default 500)")
    parser.add_argument("--partitions", type=int, default=4, help="input topic partitions (default 4)")
    parser.add_argument("--z-max", type=float, default=6.7, help="highest trial redshift (default 6.7)")
    parser.add_argument("--z-step", type=float, default=0.001, help="trial redshift step (default 0.001)")
    parser.add_argument("--device", default="auto", help="service torch device (default auto)")
    parser.add_argument("--bootstrap-servers", default=None,
                        help="use this broker instead of starting the embedded one on loopback")
    parser.add_argument("--json", type=Path, default=None, help="also write the report (with all samples) as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream bench soak``; exit code 1 when something went missing, memory grew or lag grew."""
    if args.rate <= 0 or args.duration <= 0 or args.sample_every <= 0:
        raise UserError("bench soak: --rate, --duration and --sample-every must be positive")
    with tempfile.TemporaryDirectory(prefix="zstream-soak-") as folder, _broker(args.bootstrap_servers, folder) as servers:
        config = ServiceConfig(bootstrap_servers=servers, batch_size=args.batch_size, max_wait_ms=args.max_wait_ms,
                               topic_partitions=args.partitions, z_max=args.z_max, z_step=args.z_step,
                               device=args.device, refit_enabled=False)
        report = run_soak(config, rate=args.rate, duration_s=args.duration, sample_every_s=args.sample_every,
                          pool_size=args.pool, drain_s=args.drain, workdir=Path(folder))
    print("\n".join(report.lines()))
    if args.json:
        args.json.write_text(json.dumps(asdict(report) | {"memory_flat": report.memory_flat,
                                                          "lag_bounded": report.lag_bounded}, indent=2))
    healthy = report.missing == 0 and report.memory_flat and report.lag_bounded and report.exit_code == 0
    return 0 if healthy else 1


@contextmanager
def _broker(bootstrap_servers: str | None, folder: str) -> Iterator[str]:
    """The given bootstrap servers, or an embedded broker on loopback for the duration of the block."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with EmbeddedBroker(log_path=Path(folder) / "tansu.log") as broker:
        yield broker.bootstrap_servers
