"""Three ``zstream serve`` processes with refits on, one shared archive, a real broker.

Exactly one replica holds the refit lease and only it refits; SIGKILL it while traffic flows
and a refit may be running, and another replica holds the lease within a session timeout
(plus a rebalance) and refits; the survivors converge on the serving version of the basis
topic. Across the kill, every input is answered, a duplicate carries the same key, and what
holds for its basis version is what the README states: each copy names the version it was
computed with (a redelivery after a promotion is scanned with the newer one), two copies of
the same version agree, and the compacted results topic keeps the last copy written.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer

from zstream.service import clients
from zstream.service.archive import Archive
from zstream.service.message import send
from zstream.testing.traffic import TopicReader, json_messages
from zstream.service.versions import BasisTopicReader
from zstream.sim import simulate

from reliability_helpers import http_get, ledger, make_config, producer_for, wait_ready

TIMEOUT_S = 180
LEADER = "zstream_refit_leader"
REFITS = "zstream_refits_total"


def _metric(port: int, name: str) -> float:
    """Sum of the samples of ``name`` on a replica's /metrics (0 when it does not answer)."""
    status, text = http_get(port, "/metrics") if port else (0, "")
    if status != 200:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {")


def _wait_for(condition, what: str, timeout_s: float = TIMEOUT_S) -> float:
    """Poll ``condition`` until it holds; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def _wave(n: int, seed: int, name: str):
    batch, _ = simulate(n, seed=seed)
    batch.spectrum_id = [f"{name}-{i:04d}" for i in range(n)]
    return batch


def _basis_log(config):
    reader = BasisTopicReader(clients.plain_consumer(config), config.basis_topic)
    try:
        return reader.catch_up()
    finally:
        reader.close()


def _serving_pointer(config) -> str | None:
    return _basis_log(config).serving_version


def _published_versions(config) -> set[str]:
    return set(_basis_log(config).versions)


@pytest.mark.slow
def test_one_leader_refits_fails_over_on_sigkill_and_the_basis_converges(kafka_broker, basis_files, tmp_path,
                                                                           serve_process):
    config = make_config(kafka_broker.bootstrap_servers, basis_files[0], tmp_path, archive=tmp_path / "archive",
                         refit_enabled=True, refit_every_spectra=8, refit_every_minutes=600.0, refit_recent=200,
                         refit_reservoir=0, refit_margin=0.0, refit_max_iter=20, topic_partitions=3)
    labelled, _ = simulate(120, seed=31)
    Archive(config.archive).add_labelled(labelled.take(np.flatnonzero(np.isfinite(labelled.z))))
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic],
                               partitions=config.topic_partitions)
    producer = producer_for(config)
    names = ["a", "b", "c"]
    replicas = {name: serve_process(config, name) for name in names}
    ports = {name: replica.metrics_port() for name, replica in replicas.items()}
    for port in ports.values():
        wait_ready(port)
    _wait_for(lambda: sum(_metric(port, LEADER) for port in ports.values()) == 1, "one refit leader")
    leader = next(name for name in names if _metric(ports[name], LEADER) == 1)

    first = _wave(60, seed=32, name="first")
    send(producer, config.input_topic, json_messages(first))
    _wait_for(lambda: _metric(ports[leader], REFITS) >= 1, "a refit on the leader")
    assert [_metric(ports[name], REFITS) for name in names if name != leader] == [0, 0]
    assert sum(_metric(port, LEADER) for port in ports.values()) == 1

    # SIGKILL the leader while traffic flows (its refits run on every 8 archived spectra)
    second = _wave(90, seed=33, name="second")
    traffic = threading.Thread(target=send, args=(producer, config.input_topic, json_messages(second)),
                               kwargs={"rate": 30.0}, daemon=True)
    traffic.start()
    time.sleep(1.5)
    replicas[leader].kill()
    survivors = [name for name in names if name != leader]
    bound_s = config.session_timeout_ms / 1000.0 + 10.0  # the session timeout, then one rebalance
    took = _wait_for(lambda: sum(_metric(ports[name], LEADER) for name in survivors) == 1,
                     "a new refit leader", timeout_s=bound_s)
    new_leader = next(name for name in survivors if _metric(ports[name], LEADER) == 1)
    traffic.join(TIMEOUT_S)
    _wait_for(lambda: _metric(ports[new_leader], REFITS) >= 1, "a refit on the new leader")
    bystander = next(name for name in survivors if name != new_leader)
    assert _metric(ports[bystander], REFITS) == 0, "a replica without the lease refitted"

    # every replica follows the basis topic: the survivors converge on its serving version
    def converged() -> bool:
        pointer = _serving_pointer(config)
        return all(_serving(ports[name]) == pointer for name in survivors)

    _wait_for(converged, "the survivors to serve the basis topic's version")

    # the ledger across the kill, with refits promoting meanwhile
    report = ledger(config, len(first) + len(second), TIMEOUT_S)
    assert report.complete, report.summary()
    outputs = _results(config)
    for (partition, offset, spectrum_id), outcomes in report.duplicates.items():
        copies = [row for row in outputs if (row["input_partition"], row["input_offset"]) == (partition, offset)
                  and row["spectrum_id"] == spectrum_id]
        by_version: dict[str, set] = {}
        for row in copies:
            by_version.setdefault(row["basis_version"], set()).add(row["z"])
        assert all(len(zs) == 1 for zs in by_version.values()), f"{spectrum_id}: one version, two answers"
    latest = {row["spectrum_id"]: row for row in outputs}  # what a compacted sink keeps: the last copy per key
    assert set(latest) <= {*first.spectrum_id, *second.spectrum_id}
    published = _published_versions(config)
    assert {row["basis_version"] for row in latest.values()} <= published
    assert took <= bound_s
    producer.close()


def _serving(port: int) -> str | None:
    status, text = http_get(port, "/metrics")
    for line in text.splitlines() if status == 200 else []:
        if line.startswith("zstream_basis_info{") and line.endswith(" 1.0"):
            return line.split('version="')[1].split('"')[0]
    return None


def _results(config) -> list[dict]:
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None),
                         [config.output_topic])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reader.poll(timeout_ms=200)
        return [orjson.loads(record.value) for record in reader.records]
    finally:
        reader.close()

