"""The compose producer replays JSONL lines into a real (embedded) broker, byte for byte."""

from __future__ import annotations

import importlib.util

import orjson
import pytest
from deploy_checks import DEPLOY
from kafka import KafkaConsumer, TopicPartition

from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, header

TOPIC = "deploy-producer-replay"
PARTITIONS = 3


@pytest.fixture(scope="module")
def producer_module():
    spec = importlib.util.spec_from_file_location("compose_producer", DEPLOY / "compose" / "producer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_topic(bootstrap_servers: str, expected: int) -> list:
    """Every message of TOPIC (partitions assigned directly: no consumer-group join)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        consumer.assign([TopicPartition(TOPIC, partition) for partition in range(PARTITIONS)])
        consumer.seek_to_beginning()
        messages = []
        for message in consumer:
            messages.append(message)
            if len(messages) == expected:
                break
        return messages
    finally:
        consumer.close()


def test_replay_sends_every_line_keyed_by_spectrum_id(producer_module, kafka_broker, tmp_path):
    kafka_broker.create_topics([TOPIC], partitions=PARTITIONS)
    records = [orjson.dumps({"spectrum_id": f"s{i:03d}", "flux": [float(i)] * 3}) for i in range(12)]
    lines = [*records[:6], b"{not json", b"", *records[6:], records[0]]  # a bad line, a blank one, a resend
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"\n".join(lines[:8]) + b"\n")
    second.write_bytes(b"\n".join(lines[8:]) + b"\n")

    exit_code = producer_module.main(
        ["--bootstrap-servers", kafka_broker.bootstrap_servers, "--topic", TOPIC, "--rate", "0", str(first), str(second)]
    )

    assert exit_code == 0
    sent = [line for line in lines if line]
    messages = read_topic(kafka_broker.bootstrap_servers, len(sent))
    assert sorted(message.value for message in messages) == sorted(sent)
    for message in messages:
        assert header(message.headers, CONTENT_TYPE_HEADER) == JSON_CONTENT_TYPE.encode()  # what the service reads
        expected_key = orjson.loads(message.value)["spectrum_id"].encode() if message.value != b"{not json" else None
        assert message.key == expected_key
    partitions_of_s000 = {message.partition for message in messages if message.key == b"s000"}
    assert len(partitions_of_s000) == 1  # a resent spectrum lands on the same partition


def test_message_key_ignores_lines_without_a_string_id(producer_module):
    assert producer_module.message_key(b'{"spectrum_id": "a1"}') == b"a1"
    assert producer_module.message_key(b'{"spectrum_id": 7}') is None
    assert producer_module.message_key(b"[1, 2]") is None
    assert producer_module.message_key(b"not json") is None


def test_missing_input_and_negative_rate_are_one_line_errors(producer_module, tmp_path, capsys):
    assert producer_module.main([str(tmp_path / "absent.jsonl")]) == 2
    assert "1 input file(s) not found" in capsys.readouterr().err
    existing = tmp_path / "x.jsonl"
    existing.write_text("{}\n")
    assert producer_module.main(["--rate", "-1", str(existing)]) == 2
    assert "--rate is -1.0" in capsys.readouterr().err
