"""The broker stopped under a running service. Briefly: the service waits, reconnects and resumes; /readyz
goes false while the broker is away and true again after. Past the retry bound: the replica exits non-zero
with its batch uncommitted, and a replica started after the broker returns leaves nothing missing."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from kafka import KafkaProducer

from zstream.service.message import send
from zstream.service.metrics import BROKER_RETRIES, MESSAGES_CONSUMED
from zstream.testing.traffic import json_messages

from reliability_helpers import (
    ServiceProcess,
    http_get,
    ledger,
    make_config,
    producer_for,
    wait_for_metric,
    wait_ready,
    wave,
)
from durable_broker import durable_broker

TIMEOUT_S = 120
OUTAGE_RETRIES = 3


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One durable broker for the module (each scenario uses its own topics); started on entry and exit."""
    with durable_broker(tmp_path_factory.mktemp("durable")) as durable:
        yield durable


@dataclass
class Outage:
    """A replica that answered a first wave, then lost its broker while a second wave was being sent."""

    service: ServiceProcess
    port: int
    producer: KafkaProducer
    traffic: threading.Thread
    n_spectra: int


def _lose_broker_under_traffic(config, broker, serve_process, name: str, sizes: tuple[int, int], seed: int) -> Outage:
    """Topics, a first wave answered by a new replica, then the broker stopped while the replica serves a second wave."""
    broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
    producer = producer_for(config)
    before, during = wave(sizes[0], seed, "before"), wave(sizes[1], seed + 1, "during")
    send(producer, config.input_topic, json_messages(before))
    service = serve_process(config, name)
    port = service.metrics_port()
    wait_ready(port)
    assert ledger(config, len(before), TIMEOUT_S).complete
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(during)),
                               kwargs={"rate": 15.0}, daemon=True)
    traffic.start()
    wait_for_metric(port, MESSAGES_CONSUMED, len(before) + 1)  # the second wave is being served
    broker.stop()
    return Outage(service, port, producer, traffic, len(before) + len(during))


@pytest.mark.slow
def test_broker_restart_service_waits_and_resumes(broker, basis_files, tmp_path, serve_process):
    config = make_config(broker.bootstrap_servers, basis_files[0], tmp_path, topic_partitions=2)
    outage = _lose_broker_under_traffic(config, broker, serve_process, "service", (20, 60), seed=31)
    port = outage.port
    wait_ready(port, TIMEOUT_S, status=503)
    assert "Kafka" in http_get(port, "/readyz")[1]
    assert http_get(port, "/healthz")[0] == 200, "waiting for the broker is not a stuck loop"
    wait_for_metric(port, BROKER_RETRIES, OUTAGE_RETRIES)  # it keeps retrying through the outage
    broker.start()
    wait_ready(port, TIMEOUT_S)
    outage.traffic.join(TIMEOUT_S)

    report = ledger(config, outage.n_spectra, TIMEOUT_S)
    assert report.complete and not report.inconsistent, report.summary()
    assert outage.service.process.poll() is None, "the service must survive the outage"
    code, _ = outage.service.terminate()
    assert code == 0, outage.service.log()[-3000:]
    outage.producer.close()


@pytest.mark.slow
def test_broker_gone_past_the_retry_bound_replica_exits_and_a_restart_loses_nothing(broker, basis_files, tmp_path,
                                                                                   serve_process):
    config = make_config(broker.bootstrap_servers, basis_files[0], tmp_path, topic_partitions=2, broker_retries=3,
                         retry_backoff_ms=200, retry_backoff_max_ms=1000, broker_timeout_ms=2000)
    outage = _lose_broker_under_traffic(config, broker, serve_process, "bounded", (4, 20), seed=33)
    code = outage.service.process.wait(timeout=TIMEOUT_S)
    log = outage.service.log()
    assert code == 2, log[-3000:]
    assert "giving up on Kafka" in log and "not committed" in log and "Traceback" not in log

    broker.start()
    outage.traffic.join(TIMEOUT_S)
    restarted = serve_process(config, "bounded-restarted")
    wait_ready(restarted.metrics_port())
    report = ledger(config, outage.n_spectra, TIMEOUT_S)
    assert report.complete and not report.inconsistent, report.summary()
    code, _ = restarted.terminate()
    assert code == 0, restarted.log()[-3000:]
    outage.producer.close()
