"""Process faults against a real broker, with real ``zstream serve`` processes.

One scenario, to keep consumer-group joins few: two replicas share a group
while good and bad traffic flows; one is SIGKILLed mid-batch and its
partitions move to the other; it is restarted; then both get SIGTERM while
traffic still flows. At every step the topics are reconciled: every input ends
as results or dead letters (each with its reason), duplicates carry the same key
and basis version, and after SIGTERM every committed input is answered and every answered input committed,
except a batch whose commit the group refused because the other replica was leaving at the same
moment (a rebalance): it is answered but left uncommitted, so the next owner repeats it.
A SASL password set on both replicas appears in no log line and not on /metrics.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition

from zstream.service.message import send
from zstream.testing.traffic import json_messages

from bad_inputs import bad_messages
from reliability_helpers import (
    STOP_BOUND_S,
    http_get,
    in_hand,
    ledger,
    make_config,
    producer_for,
    wait_for_batch_in_hand,
    wait_ready,
    wave,
)

TIMEOUT_S = 120
SECRET = "s3cr3t-sasl-Passw0rd"


def _lag_partitions(metrics_text: str) -> set[str]:
    return {line.split('partition="')[1].split('"')[0]
            for line in metrics_text.splitlines() if line.startswith("zstream_consumer_lag{")}


def _committed(config) -> dict[int, int]:
    probe = KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=config.group_id,
                          enable_auto_commit=False)
    try:
        return {p: probe.committed(TopicPartition(config.input_topic, p)) or 0 for p in range(config.topic_partitions)}
    finally:
        probe.close()


@pytest.mark.slow
def test_kill_failover_restart_and_sigterm(kafka_broker, basis_files, tmp_path, serve_process):
    config = make_config(kafka_broker.bootstrap_servers, basis_files[0], tmp_path)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic],
                               partitions=config.topic_partitions)
    producer = producer_for(config)
    first = wave(40, seed=21, name="first")
    catalogue = bad_messages(first, config.max_message_bytes)
    send(producer, config.input_topic, [*json_messages(first), *(m for m, _ in catalogue)])
    expected = len(first) + 1 + len(catalogue)  # + the first copy of the duplicated id

    replicas = [serve_process(config, name, ZSTREAM_SASL_PLAIN_PASSWORD=SECRET) for name in ("a", "b")]
    ports = [replica.metrics_port() for replica in replicas]
    for port in ports:
        wait_ready(port)
    report = ledger(config, expected, TIMEOUT_S)
    assert report.complete and not report.duplicates, report.summary()
    assert report.reasons == Counter(reason.value for _, reason in catalogue)

    # SIGKILL replica a while traffic flows; b takes over every partition and nothing goes missing
    second = wave(120, seed=22, name="second")
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(second)),
                               kwargs={"rate": 40.0}, daemon=True)
    baseline = in_hand(ports[0])
    traffic.start()
    wait_for_batch_in_hand(ports[0], baseline)  # a has polled input it has not answered yet: mid-batch
    replicas[0].kill()
    traffic.join(TIMEOUT_S)
    expected += len(second)
    report = ledger(config, expected, TIMEOUT_S)
    assert report.complete, report.summary()
    assert not report.inconsistent, report.summary()
    assert _lag_partitions(http_get(ports[1], "/metrics")[1]) == {str(p) for p in range(config.topic_partitions)}

    # restart a; the group rebalances over both again and keeps up
    replicas[0] = serve_process(config, "a-restarted", ZSTREAM_SASL_PLAIN_PASSWORD=SECRET)
    ports[0] = replicas[0].metrics_port()
    wait_ready(ports[0])
    third = wave(24, seed=23, name="third")
    send(producer, config.input_topic, json_messages(third))
    expected += len(third)
    report = ledger(config, expected, TIMEOUT_S)
    assert report.complete and not report.inconsistent, report.summary()
    metrics_texts = [http_get(port, "/metrics")[1] for port in ports]

    # SIGTERM both while traffic flows: each finishes its batch, flushes, commits and exits 0 in bound
    last = wave(200, seed=24, name="last")
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(last)),
                               kwargs={"rate": 60.0}, daemon=True)
    baseline = in_hand(ports[0])
    traffic.start()
    wait_for_batch_in_hand(ports[0], baseline)  # SIGTERM lands while a batch is in hand and traffic flows
    stops = [replica.terminate(STOP_BOUND_S) for replica in replicas]
    traffic.join(TIMEOUT_S)
    assert [code for code, _ in stops] == [0, 0], [replica.log()[-2000:] for replica in replicas]

    committed = _committed(config)
    report = ledger(config, 0, 5)
    for partition, offset in report.missing:
        assert offset >= committed[partition], f"input {partition}:{offset} committed but never answered"
    assert not report.unknown and not report.inconsistent, report.summary()
    answered_uncommitted = report.n_inputs - len(report.missing) - sum(committed.values())
    assert answered_uncommitted >= 0, (committed, report.summary())
    if answered_uncommitted:  # only a commit refused by the rebalance of the other replica leaving may do this
        assert any("RebalanceInProgress" in replica.log() for replica in replicas), (committed, report.summary())

    for text in [replica.log() for replica in replicas] + metrics_texts:
        assert SECRET not in text
    producer.close()
