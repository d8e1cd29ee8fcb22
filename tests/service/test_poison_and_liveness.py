"""A scan that raises on one spectrum costs that spectrum only (internal_error, batch-mates answered, no
restart); a consume loop that stops making progress fails /healthz and recovers when it moves again."""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pytest
from kafka import KafkaConsumer, KafkaProducer

from zstream.io import Reason, SpectrumBatch, decode_result_json
from zstream.service import basis_sync
from zstream.service.clients import header
from zstream.service.message import send
from zstream.service.outputs import ERROR_HEADER, REASON_HEADER, SPECTRUM_ID_HEADER
from zstream.service.processing import scan_isolating
from zstream.service.replica import Replica
from zstream.testing.traffic import TopicReader, json_messages

from service_builders import simulate_test

TIMEOUT_S = 120
POISON = "poison-spectrum"
STALL = "stall-spectrum"


class TrappedScanner:
    """Wraps a real scanner: raises on the poison id, blocks on the stall id until released."""

    def __init__(self, scanner) -> None:
        self.scanner = scanner
        self.release = threading.Event()
        self.poisoned_batch_sizes: list[int] = []

    def scan(self, batch: SpectrumBatch):
        if POISON in batch.spectrum_id:
            self.poisoned_batch_sizes.append(len(batch))
            raise FloatingPointError(f"injected failure on {POISON}")
        if STALL in batch.spectrum_id:
            self.release.wait(TIMEOUT_S)
        return self.scanner.scan(batch)


@pytest.fixture
def trapped(monkeypatch) -> list[TrappedScanner]:
    """Every ServingBasis a replica builds gets a TrappedScanner around its real scanner."""
    built: list[TrappedScanner] = []
    real_build = basis_sync.build_serving

    def build(*args, **kwargs):
        serving = real_build(*args, **kwargs)
        built.append(TrappedScanner(serving.scanner))
        return dataclasses.replace(serving, scanner=built[-1])

    monkeypatch.setattr(basis_sync, "build_serving", build)
    return built


def _health(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_scan_isolating_answers_everything_but_the_failing_spectra():
    batch, _ = simulate_test(7, 3)
    batch.spectrum_id[2], batch.spectrum_id[5] = f"{POISON}-a", f"{POISON}-b"
    answered: list[str] = []

    def scan(part: SpectrumBatch) -> pa.Table:
        if any(name.startswith(POISON) for name in part.spectrum_id):
            raise ValueError("bad spectrum")
        answered.extend(part.spectrum_id)
        return pa.table({"spectrum_id": part.spectrum_id})

    results, failures = scan_isolating(scan, batch)
    kept = [batch.spectrum_id[i] for i in (0, 1, 3, 4, 6)]
    assert results.column("spectrum_id").to_pylist() == kept
    assert sorted(answered) == sorted(kept), "each good spectrum is scanned successfully exactly once"
    assert {row: (error.reason, error.detail) for row, error in failures.items()} == {
        2: (Reason.INTERNAL_ERROR, "ValueError: bad spectrum"), 5: (Reason.INTERNAL_ERROR, "ValueError: bad spectrum")}


def test_a_scanner_failure_on_one_spectrum_is_isolated_without_a_restart(kafka_broker, service_config, running,
                                                                         trapped):
    config = dataclasses.replace(service_config, batch_size=12, max_wait_ms=1000)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=1)
    spectra, _ = simulate_test(11, 7)
    spectra.spectrum_id[5] = POISON
    messages = list(json_messages(spectra))
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000)
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None),
                         [config.output_topic, config.dlq_topic])
    replica = Replica(config)
    with running(replica) as thread:
        _wait_for(lambda: replica.readiness()[0], "the replica to be ready")
        send(producer, config.input_topic, messages)
        records = reader.read_until(len(messages), TIMEOUT_S)
        assert thread.is_alive() and replica.readiness()[0]
        # the results are on the topic before the replica finishes its bookkeeping (metrics, archive,
        # then batches_done last): wait for that, not for the records, before reading the counters
        _wait_for(lambda: replica.batches_done >= 1, "the replica to finish the batch's bookkeeping")
        isolated = replica.metrics.value("zstream_isolated_records_total", stage="scan")
        batches = replica.batches_done

    results = [decode_result_json(r.value)["spectrum_id"] for r in records if r.topic == config.output_topic]
    dead = [r for r in records if r.topic == config.dlq_topic]
    assert sorted(results) == sorted(i for i in spectra.spectrum_id if i != POISON)
    (letter,) = dead
    assert header(letter.headers, REASON_HEADER) == Reason.INTERNAL_ERROR.value.encode()
    assert header(letter.headers, ERROR_HEADER) == f"FloatingPointError: injected failure on {POISON}".encode()
    assert header(letter.headers, SPECTRUM_ID_HEADER) == POISON.encode()
    assert letter.value == messages[5].value, "the DLQ record carries the original bytes"
    assert isolated == 1 and batches >= 1
    assert len(trapped) == 1, "one serving basis: the replica never restarted"
    assert max(trapped[0].poisoned_batch_sizes) > 1 and min(trapped[0].poisoned_batch_sizes) == 1, \
        "the poison spectrum shared its first scan with batch-mates and was bisected down to itself"


def test_a_stalled_consume_loop_fails_healthz_and_recovers(kafka_broker, service_config, running, trapped):
    config = dataclasses.replace(service_config, liveness_timeout_s=1.0, broker_timeout_ms=500)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=1)
    stalled, _ = simulate_test(1, 8)
    stalled.spectrum_id = [STALL]
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000)
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None), [config.output_topic])
    replica = Replica(config)
    with running(replica):
        _wait_for(lambda: replica.readiness()[0], "the replica to be ready")
        port = replica.health.port
        _wait_for(lambda: _health(port)[0] == 200, "/healthz to pass while the loop runs")
        send(producer, config.input_topic, json_messages(stalled))
        _wait_for(lambda: _health(port)[0] == 503, "/healthz to fail while the loop is stuck in a scan")
        assert "consume loop stuck" in _health(port)[1]
        assert replica.readiness()[0], "stuck is a liveness failure; the replica is still connected and assigned"
        trapped[0].release.set()
        assert [decode_result_json(r.value)["spectrum_id"] for r in reader.read_until(1, TIMEOUT_S)] == [STALL]
        _wait_for(lambda: _health(port)[0] == 200, "/healthz to pass again once the loop moves")
