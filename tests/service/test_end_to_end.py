"""One replica against a real broker: every input accounted for, results equal Scanner.scan,
offsets committed, restart resumes without loss, /metrics counts match what was sent."""

from __future__ import annotations

import dataclasses
import time
import urllib.request

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from zstream.cli import main
from zstream.io import RESULT_SCHEMA, SpectrumBatch, decode_result_json, load_basis, read_rejects, read_results
from zstream.redshift import Scanner
from zstream.service.clients import header
from zstream.service.message import Message, send
from zstream.service.replica import Replica
from zstream.testing.traffic import TopicReader, arrow_message, json_messages

from service_builders import scrape, simulate_test

TIMEOUT_S = 120


def _bad_messages(good: SpectrumBatch) -> tuple[list[Message], dict[str, int]]:
    """Messages that must end in the DLQ, and how many DLQ records of each reason they give."""
    record = {"spectrum_id": "bad-missing-flux", "wavelength": [5000.0, 5001.0], "ivar": [1.0, 1.0]}
    far_uv = {"spectrum_id": "bad-far-uv", "wavelength": np.linspace(100.0, 300.0, 50).tolist(),
              "flux": [1.0] * 50, "ivar": [1.0] * 50}
    oversized = {"spectrum_id": "bad-oversized", "wavelength": [5000.0], "flux": [1.0], "ivar": [1.0],
                 "padding": "x" * 700_000}
    negative = SpectrumBatch(
        ["arrow-dup", "arrow-dup", "arrow-negative-ivar"],
        [good.wavelength[0]] * 3,
        [good.flux[0]] * 3,
        [good.ivar[0], good.ivar[0], -np.abs(good.ivar[0])],
    )
    messages = [
        Message(b"junk", b"{not json"),
        Message(b"bad-missing-flux", orjson.dumps(record)),
        Message(b"bad-far-uv", orjson.dumps(far_uv)),
        Message(b"bad-oversized", orjson.dumps(oversized)),
        arrow_message(negative),
    ]
    reasons = {"invalid_json": 1, "missing_field": 1, "no_overlap_with_basis": 1, "oversized_message": 1,
               "duplicate_id_in_batch": 1, "negative_ivar": 1}
    return messages, reasons


def _check_replays(config, live: list[dict], dead_reasons: dict[str, int], tmp_path) -> None:
    scan_flags = ["--z-min", str(config.z_min), "--z-max", str(config.z_max), "--z-step", str(config.z_step),
                  "--device", "cpu", "--max-message-bytes", str(config.max_message_bytes)]
    live_by_id = {row["spectrum_id"]: {k: v for k, v in row.items() if k != "processing_ms"} for row in live}

    topic_out, topic_rejects = tmp_path / "topic-replay.jsonl", tmp_path / "topic-replay-rejects.jsonl"
    assert main(["replay", "--from-topic", config.input_topic, "--bootstrap-servers", config.bootstrap_servers,
                 "--basis", str(config.basis), "--out", str(topic_out), "--rejects", str(topic_rejects),
                 *scan_flags]) == 0
    replayed = read_results(topic_out).to_pylist()
    assert {row["spectrum_id"]: {k: v for k, v in row.items() if k != "processing_ms"} for row in replayed} == live_by_id
    rejects = read_rejects(topic_rejects)
    assert sorted(reject.reason.value for reject in rejects) == sorted(
        reason for reason, count in dead_reasons.items() for _ in range(count))

    archive_out = tmp_path / "archive-replay.parquet"
    assert main(["replay", "--input", str(config.archive), "--basis-version", "test-v1", "--out", str(archive_out),
                 *scan_flags]) == 0
    archived = read_results(archive_out).to_pylist()
    assert archived, "the live run archived no confident spectrum"
    for row in archived:
        assert {name: row[name] for name in (*RESULT_SCHEMA.names, "meta")} == {
            name: live_by_id[row["spectrum_id"]][name] for name in (*RESULT_SCHEMA.names, "meta")}


def _committed(config, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    probe = KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=config.group_id,
                          enable_auto_commit=False)
    try:
        return {partition: probe.committed(partition) for partition in partitions}
    finally:
        probe.close()


def test_serve_end_to_end_restart_and_metrics(kafka_broker, service_config, running, tmp_path):
    config = service_config
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
    good, _ = simulate_test(12, 5)
    bad, bad_reasons = _bad_messages(good)
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000)
    sent = send(producer, config.input_topic, [*json_messages(good), *bad])
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None),
                         [config.output_topic, config.dlq_topic])
    n_results, n_dead = len(good) + 1, sum(bad_reasons.values())

    replica = Replica(config)
    with running(replica):
        records = reader.read_until(n_results + n_dead, TIMEOUT_S)
        metrics = scrape(replica.health.port)
        ready = urllib.request.urlopen(f"http://127.0.0.1:{replica.health.port}/readyz", timeout=10)
        alive = urllib.request.urlopen(f"http://127.0.0.1:{replica.health.port}/healthz", timeout=10)
        assert ready.status == 200 and alive.status == 200

    results = [decode_result_json(r.value) for r in records if r.topic == config.output_topic]
    dead = [r for r in records if r.topic == config.dlq_topic]
    assert len(results) == n_results and len(dead) == n_dead
    assert {r["spectrum_id"] for r in results} == {*good.spectrum_id, "arrow-dup"}
    dead_reasons = {}
    for letter in dead:
        reason = header(letter.headers, "zstream-reason").decode()
        dead_reasons[reason] = dead_reasons.get(reason, 0) + 1
        assert header(letter.headers, "zstream-error")
        source_offset = int(header(letter.headers, "zstream-source-offset"))
        assert letter.value in {message.value for message in bad}, "DLQ must carry the original bytes"
        assert source_offset >= 0
    assert dead_reasons == bad_reasons

    # results equal a direct Scanner.scan of the same spectra with the same basis (the sky column
    # crossed JSON as text, so its float32 values come back as the nearest doubles: floats to 1e-6)
    expected = Scanner(load_basis(config.basis), config.scan_config(), device="cpu").scan(good).to_pylist()
    by_id = {r["spectrum_id"]: r for r in results}
    for row in expected:
        live = by_id[row["spectrum_id"]]
        for name in RESULT_SCHEMA.names:
            if isinstance(row[name], float):
                assert live[name] == pytest.approx(row[name], rel=1e-6), name
            elif name == "coefficients":
                assert live[name] == pytest.approx(row[name], rel=1e-5, abs=1e-30), name
            else:
                assert live[name] == row[name], name
        assert live["input_topic"] == config.input_topic and live["processing_ms"] >= 0

    # offsets committed up to the end of each partition
    partitions = [TopicPartition(config.input_topic, p) for p in range(2)]
    end = reader.consumer.end_offsets(partitions)
    assert _committed(config, partitions) == end
    assert sum(end.values()) == sent

    # metrics, scraped over HTTP, count exactly what was sent
    assert metrics[("zstream_messages_consumed_total", (("topic", config.input_topic),))] == sent
    assert metrics[("zstream_results_produced_total", ())] == n_results
    for reason, count in bad_reasons.items():
        assert metrics[("zstream_dlq_records_total", (("reason", reason),))] == count
    assert metrics[("zstream_basis_info", (("version", "test-v1"),))] == 1
    assert metrics[("zstream_ready", ())] == 1
    assert metrics[("zstream_scan_duration_seconds_count", ())] >= 1
    assert sum(metrics[("zstream_classifications_total", (("label", label),))]
               for label in ("source", "false", "blend")) == n_results

    # replay of the topic range, and of the archive, with the same basis reproduces the live results bit for bit
    _check_replays(config, results, dead_reasons, tmp_path)

    # restart: only the new messages are processed, none lost, none repeated
    more, _ = simulate_test(4, 6)
    more.spectrum_id = [f"restart-{i}" for i in range(len(more))]
    send(producer, config.input_topic, json_messages(more))
    with running(Replica(dataclasses.replace(config))):
        records = reader.read_until(n_results + n_dead + len(more), TIMEOUT_S)
        time.sleep(1.0)  # a re-processed old message would arrive now
        reader.poll(timeout_ms=500)
    results = [decode_result_json(r.value) for r in reader.records if r.topic == config.output_topic]
    ids = [r["spectrum_id"] for r in results]
    assert len(ids) == len(set(ids)) == n_results + len(more)
    assert _committed(config, partitions) == reader.consumer.end_offsets(partitions)
    reader.close()
    producer.close()
