"""A reduction system's own fields come back in each result's ``meta``: through the real broker (JSON and
Arrow IPC messages) and through result files (``zstream scan``, ``zstream replay``)."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, KafkaProducer

from zstream.cli import main
from zstream.io import decode_result_json, save_basis, write_spectra
from zstream.service.replica import Replica
from zstream.service.message import Message, send
from zstream.testing.traffic import TopicReader, arrow_message, json_messages

from service_builders import simulate_test

TIMEOUT_S = 120


def _with_meta(batch, prefix: str):
    """The batch with observatory fields added: numbers, text, a nested object, and one field too big."""
    n = len(batch)
    batch.spectrum_id = [f"{prefix}-{i}" for i in range(n)]
    fields = pa.table({
        "ra": [150.0 + i / 10 for i in range(n)], "dec": [2.0 - i / 10 for i in range(n)],
        "exposure_id": [f"MUSE.2026-12-01T0{i}" for i in range(n)], "field": ["COSMOS"] * n,
        "pipeline": [{"name": "muse-drs", "version": "2.8.5"}] * n, "notes": ["x" * 5000] * n,
    })
    for name in fields.column_names:
        batch.extra = batch.extra.append_column(name, fields.column(name))
    return batch


def _expected(row: int) -> dict:
    return {"ra": 150.0 + row / 10, "dec": 2.0 - row / 10, "exposure_id": f"MUSE.2026-12-01T0{row}",
            "field": "COSMOS", "pipeline": {"name": "muse-drs", "version": "2.8.5"}}


def test_meta_round_trips_through_the_broker_for_json_and_arrow(kafka_broker, service_config, running):
    config = service_config
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic], partitions=2)
    as_json = _with_meta(simulate_test(3, 41)[0], "json")
    as_arrow = _with_meta(simulate_test(3, 42)[0], "arrow")
    plain = simulate_test(1, 43)[0]
    plain.spectrum_id = ["plain-0"]
    messages: list[Message] = [*json_messages(as_json), arrow_message(as_arrow), *json_messages(plain)]
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, max_request_size=4_000_000)
    send(producer, config.input_topic, messages)
    reader = TopicReader(KafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None), [config.output_topic])
    with running(Replica(config)):
        records = reader.read_until(7, TIMEOUT_S)
    results = {row["spectrum_id"]: row for row in map(decode_result_json, (r.value for r in records))}
    for prefix in ("json", "arrow"):
        for i in range(3):
            assert results[f"{prefix}-{i}"]["meta"] == _expected(i)
            assert results[f"{prefix}-{i}"]["meta_dropped"] == ["notes"]
    assert results["plain-0"]["meta"] is None and results["plain-0"]["meta_dropped"] is None
    reader.close()
    producer.close()


def test_meta_reaches_scan_and_replay_result_files(basis_path, tmp_path):
    batch = _with_meta(simulate_test(3, 44)[0], "file")
    spectra = tmp_path / "spectra.parquet"
    write_spectra(spectra, batch)
    common = ["--z-min", "0", "--z-max", "1.6", "--z-step", "0.002", "--device", "cpu"]
    assert main(["scan", "--input", str(spectra), "--basis", str(basis_path), "--out", str(tmp_path / "scan.parquet"),
                 "--z-min", "0", "--z-max", "1.6", "--z-step", "0.002"]) == 0
    assert main(["replay", "--input", str(spectra), "--basis", str(basis_path),
                 "--out", str(tmp_path / "replay.jsonl"), *common]) == 0
    scanned = pq.read_table(tmp_path / "scan.parquet").to_pylist()
    assert [orjson.loads(row["meta"]) for row in scanned] == [_expected(i) for i in range(3)]
    assert all(row["meta_dropped"] == ["notes"] for row in scanned)
    replayed = [orjson.loads(line) for line in (tmp_path / "replay.jsonl").read_bytes().splitlines()]
    assert [row["meta"] for row in replayed] == [_expected(i) for i in range(3)]
