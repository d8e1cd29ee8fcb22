"""Helpers for the reliability tests: per-scenario settings, topic readers, HTTP probes and service
processes (a uniquely named module: test directories share one ``conftest`` module name, so helpers
are not imported from conftest)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from zstream.io import SpectrumBatch
from zstream.service.config import ServiceConfig
from zstream.service.metrics import DLQ_RECORDS, MESSAGES_CONSUMED, RESULTS_PRODUCED
from zstream.sim import simulate
from zstream.testing.ledger import Reconciliation, reconcile
from zstream.testing.traffic import TopicReader

from probes import http_get

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "deployment.yaml"
STOP_BOUND_S = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] / 3
"""How long a replica may take from SIGTERM to exit: a third of the configured k8s grace period."""


def make_config(bootstrap_servers: str, basis: Path, tmp_path: Path, **overrides) -> ServiceConfig:
    """Settings for one scenario: its own topics and group, fast scans, loopback metrics on a free port."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    values = dict(
        bootstrap_servers=bootstrap_servers,
        input_topic=f"{prefix}.spectra",
        output_topic=f"{prefix}.results",
        dlq_topic=f"{prefix}.dlq",
        basis_topic=f"{prefix}.basis",
        group_id=f"{prefix}.group",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        topic_partitions=4,
        basis=basis,
        archive=None,
        refit_enabled=False,
        z_min=0.0,
        z_max=1.6,
        z_step=0.002,
        batch_size=8,
        max_wait_ms=200,
        device="cpu",
        metrics_host="127.0.0.1",
        metrics_port=0,
        max_message_bytes=600_000,
    )
    return ServiceConfig(**(values | overrides))


def producer_for(config: ServiceConfig) -> KafkaProducer:
    """A producer for test traffic (large enough for the oversized-message case)."""
    return KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000, linger_ms=5)


def _read_until_idle(reader: TopicReader, idle_s: float = 1.0, timeout_s: float = 60.0) -> list:
    """Poll until nothing new arrives for ``idle_s`` (end offsets are not record counts on every tansu engine)."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < idle_s and time.monotonic() < deadline:
        if reader.poll(timeout_ms=200):
            quiet_since = time.monotonic()
    return reader.records


def read_back(config: ServiceConfig, expected_outputs: int, timeout_s: float) -> tuple[list, list]:
    """Read the whole input topic, and the output + DLQ topics once ``expected_outputs`` records arrived."""
    inputs = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None), [config.input_topic])
    outputs = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None),
                          [config.output_topic, config.dlq_topic])
    try:
        outputs.read_until(expected_outputs, timeout_s)
        _read_until_idle(outputs)  # a late duplicate would show up here
        return _read_until_idle(inputs), outputs.records
    finally:
        inputs.close()
        outputs.close()


def ledger(config: ServiceConfig, expected_outputs: int, timeout_s: float = 120.0) -> Reconciliation:
    """Reconcile the scenario's topics once ``expected_outputs`` records have arrived (or time ran out)."""
    inputs, outputs = read_back(config, expected_outputs, timeout_s)
    return reconcile(inputs, outputs, config.output_topic)


def wait_ready(port: int, timeout_s: float = 120.0, *, status: int = 200) -> None:
    """Poll ``/readyz`` until it answers ``status`` (200 ready, 503 not ready)."""
    deadline = time.monotonic() + timeout_s
    while http_get(port, "/readyz")[0] != status:
        assert time.monotonic() < deadline, f"/readyz on port {port} did not answer {status} within {timeout_s} s"
        time.sleep(0.2)


def metric_total(port: int, *names: str) -> float:
    """Sum of every sample of the metrics ``names`` on a replica's /metrics, now."""
    return sum(sample.value for family in text_string_to_metric_families(http_get(port, "/metrics")[1])
               for sample in family.samples if sample.name in names)


def wait_for_metric(port: int, name: str, at_least: float, timeout_s: float = 120.0) -> None:
    """Poll /metrics until metric ``name`` sums to ``at_least``."""
    deadline = time.monotonic() + timeout_s
    while metric_total(port, name) < at_least:
        assert time.monotonic() < deadline, f"{name} on port {port} stayed below {at_least} for {timeout_s} s"
        time.sleep(0.05)


def in_hand(port: int) -> tuple[float, float]:
    """Input messages a replica has consumed, and results plus dead letters it has produced, so far."""
    return metric_total(port, MESSAGES_CONSUMED), metric_total(port, RESULTS_PRODUCED, DLQ_RECORDS)


def wait_for_batch_in_hand(port: int, baseline: tuple[float, float], timeout_s: float = 120.0) -> None:
    """Return once the replica holds input consumed after ``baseline`` that it has not answered yet.

    Consumed messages are counted when a batch is taken, results and dead letters once it is
    delivered and committed, so in between the replica is mid-batch.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        consumed, answered = in_hand(port)
        if consumed > baseline[0] and consumed - baseline[0] > answered - baseline[1]:
            return
        assert time.monotonic() < deadline, f"replica on port {port} held no unanswered batch within {timeout_s} s"
        time.sleep(0.02)


def wave(n: int, seed: int, name: str) -> SpectrumBatch:
    """``n`` simulated spectra with ids ``name-0000``… (unique per wave of a scenario)."""
    batch, _ = simulate(n, seed=seed)
    batch.spectrum_id = [f"{name}-{i:04d}" for i in range(n)]
    return batch


@dataclass
class ServiceProcess:
    """A ``zstream serve`` child process with its stderr captured to a file."""

    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def metrics_port(self, timeout_s: float = 60.0) -> int:
        """The port of its metrics server, read from its startup log line."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if "metrics on port" in line:
                    return int(line.rsplit(" ", 1)[1])
            if self.process.poll() is not None:
                raise AssertionError(f"service exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.2)
        raise AssertionError(f"service did not report its metrics port in {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, bound_s: float = STOP_BOUND_S) -> tuple[int, float]:
        """SIGTERM; return (exit code, seconds until exit). Kills it if it overstays ``bound_s``."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=bound_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"service ignored SIGTERM for {bound_s} s:\n{self.log()}") from None
        return code, time.monotonic() - started
