"""A basis change while the consumer group fails over: a replica is SIGKILLed mid-batch and a new basis is
made serving at the same moment. Nothing is lost; a message answered twice is answered under the old and
then the new version, never anything else; the survivor and a replica started afterwards both serve the
new version, and everything sent after the change is answered with it."""

from __future__ import annotations

import threading
import time

import pytest

from zstream.io import load_basis
from zstream.service.message import send
from zstream.service.metrics import BASIS_INFO
from zstream.service.versions import point_serving, publish_basis
from zstream.testing.ledger import outcome_of, reconcile
from zstream.testing.traffic import json_messages

from reliability_helpers import (
    http_get,
    in_hand,
    make_config,
    producer_for,
    read_back,
    wait_for_batch_in_hand,
    wait_ready,
    wave,
)

TIMEOUT_S = 120


def _wait_serving(port: int, version: str, timeout_s: float = TIMEOUT_S) -> None:
    """Poll a replica's /metrics until its basis info names ``version``."""
    deadline = time.monotonic() + timeout_s
    while f'{BASIS_INFO}{{version="{version}"}} 1.0' not in http_get(port, "/metrics")[1]:
        assert time.monotonic() < deadline, f"replica on port {port} did not serve {version} within {timeout_s} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_basis_change_during_a_failover(kafka_broker, basis_files, tmp_path, serve_process):
    config = make_config(kafka_broker.bootstrap_servers, basis_files[0], tmp_path)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic],
                               partitions=config.topic_partitions)
    producer = producer_for(config)
    replicas = [serve_process(config, name) for name in ("a", "b")]
    ports = [replica.metrics_port() for replica in replicas]
    for port in ports:
        wait_ready(port)

    before = wave(80, seed=31, name="during")
    baseline = in_hand(ports[0])
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(before)),
                               kwargs={"rate": 40.0}, daemon=True)
    traffic.start()
    wait_for_batch_in_hand(ports[0], baseline)
    replicas[0].kill()  # mid-batch: its partitions move to b while the basis changes
    new_basis = load_basis(basis_files[1])
    publish_basis(producer, config.basis_topic, new_basis)
    point_serving(producer, config.basis_topic, new_basis.version, previous="rel-v1", reason="change during failover")
    traffic.join(TIMEOUT_S)
    inputs, outputs = read_back(config, len(before), TIMEOUT_S)
    report = reconcile(inputs, outputs, config.output_topic)
    assert report.complete, report.summary()
    assert set(report.versions) <= {"rel-v1", "rel-v2"}, report.summary()
    for key, outcomes in report.inconsistent.items():
        assert sorted(o.label for o in outcomes if o.kind == "result") == ["rel-v1", "rel-v2"], (key, outcomes)

    replicas[0] = serve_process(config, "a-restarted")  # started with --basis v1: the topic's serving version wins
    ports[0] = replicas[0].metrics_port()
    wait_ready(ports[0])
    for port in ports:
        _wait_serving(port, "rel-v2")
    after = wave(24, seed=32, name="after")
    send(producer, config.input_topic, json_messages(after))
    inputs, outputs = read_back(config, len(outputs) + len(after), TIMEOUT_S)
    assert reconcile(inputs, outputs, config.output_topic).complete
    versions_after = {outcome.label for outcome in (outcome_of(record, config.output_topic) for record in outputs)
                      if outcome.kind == "result" and (outcome.spectrum_id or "").startswith("after-")}
    assert versions_after == {"rel-v2"}
    assert [replica.terminate()[0] for replica in replicas] == [0, 0]
    producer.close()
