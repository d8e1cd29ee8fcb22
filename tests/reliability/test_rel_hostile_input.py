"""Hundreds of seeded hostile messages (deep nesting, huge and odd ids, numbers with thousands of digits,
extreme and non-numeric numbers, wrong types at every level, truncated and corrupted Arrow IPC, random
bytes): decoding answers each with a reason and nothing else, and a live ``zstream serve`` fed them between
good spectra stays up, gives every message exactly its outcomes and answers every good spectrum."""

from __future__ import annotations

from collections import Counter

import numpy as np
import orjson
import pytest

from zstream.io import Reason, RecordError, decode_message
from zstream.io.reasons import MAX_DETAIL_CHARS
from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, header
from zstream.service.message import Message, send
from zstream.sim import simulate
from zstream.testing.traffic import json_messages

from hostile_inputs import hostile_messages
from reliability_helpers import http_get, make_config, producer_for, read_back, wait_ready

TIMEOUT_S = 120
MAX_BYTES = 600_000
AFTER_DECODING = {Reason.NO_OVERLAP_WITH_BASIS, Reason.DUPLICATE_ID_IN_BATCH, Reason.INTERNAL_ERROR}
"""What the service may still make of a spectrum the decoder accepted (the scan being a black box here)."""


def _content_type(message: Message) -> str:
    return (header(list(message.headers), CONTENT_TYPE_HEADER) or JSON_CONTENT_TYPE.encode()).decode("latin-1")


def _outcomes(message: Message) -> list[Reason | None]:
    """What decoding makes of a message: one entry per spectrum (None = accepted), or its one refusal."""
    try:
        batch, rejects = decode_message(message.value, content_type=_content_type(message), max_bytes=MAX_BYTES)
    except RecordError as error:
        assert "\n" not in error.detail and len(error.detail) <= MAX_DETAIL_CHARS
        return [error.reason]
    for reject in rejects:
        assert "\n" not in reject.detail and len(reject.detail) <= MAX_DETAIL_CHARS
    return [None] * len(batch) + [reject.reason for reject in rejects]


def _hostile_templates():
    """Spectra the hostile messages are built from, with ids no good spectrum has."""
    template, _ = simulate(4, seed=41)
    template.spectrum_id = [f"template-{i}" for i in range(len(template))]
    return template


def test_decoding_hostile_messages_answers_each_with_reasons_and_nothing_else():
    messages = hostile_messages(np.random.default_rng(20261123), _hostile_templates(), 1500)
    seen: Counter = Counter()
    for message in messages:
        outcomes = _outcomes(message)  # raises if decoding raised anything but RecordError
        assert outcomes, "a message that decodes to nothing would vanish"
        if _content_type(message).split(";")[0].strip().lower() != "application/vnd.apache.arrow.stream":
            assert len(outcomes) == 1
        seen.update(outcomes)
    assert Reason.INTERNAL_ERROR not in seen, "hostile input must meet a reason, not a decoder bug"
    expected = {Reason.TOO_DEEP, Reason.FIELD_TOO_LARGE, Reason.INVALID_JSON, Reason.INVALID_ARROW_IPC,
                Reason.WRONG_TYPE, Reason.INVALID_UTF8_ID, Reason.UNSUPPORTED_CONTENT_TYPE, Reason.EMPTY_MESSAGE}
    assert expected <= set(seen), f"the generator no longer reaches {expected - set(seen)}"


@pytest.mark.slow
def test_live_replica_answers_hostile_and_good_traffic_and_stays_up(kafka_broker, basis_files, tmp_path,
                                                                    serve_process):
    config = make_config(kafka_broker.bootstrap_servers, basis_files[0], tmp_path, max_message_bytes=MAX_BYTES)
    kafka_broker.create_topics([config.input_topic, config.output_topic, config.dlq_topic],
                               partitions=config.topic_partitions)
    good, _ = simulate(40, seed=42)
    good.spectrum_id = [f"good-{i:03d}" for i in range(len(good))]
    hostile = hostile_messages(np.random.default_rng(7), _hostile_templates(), 300)
    rng = np.random.default_rng(8)
    traffic = [*json_messages(good), *hostile]
    traffic = [traffic[i] for i in rng.permutation(len(traffic))]
    expected = {message.value: Counter(_outcomes(message)) for message in traffic}

    service = serve_process(config, "hostile")
    port = service.metrics_port()
    wait_ready(port)
    producer = producer_for(config)
    send(producer, config.input_topic, traffic)
    producer.close()
    n_outcomes = sum(sum(counts.values()) for counts in expected.values())
    inputs, outputs = read_back(config, n_outcomes, TIMEOUT_S)

    assert service.process.poll() is None, f"the replica must stay up:\n{service.log()[-3000:]}"
    assert http_get(port, "/healthz")[0] == 200 and http_get(port, "/readyz")[0] == 200
    delivered: dict[tuple[int, int], Counter] = {}
    for record in outputs:
        if record.topic == config.output_topic:
            value = orjson.loads(record.value)
            where, outcome = (value["input_partition"], value["input_offset"]), None
        else:
            where = (int(header(record.headers, "zstream-source-partition")),
                     int(header(record.headers, "zstream-source-offset")))
            outcome = Reason(header(record.headers, "zstream-reason").decode())
        delivered.setdefault(where, Counter())[None if outcome in AFTER_DECODING else outcome] += 1
    assert len(inputs) == len(traffic)
    for record in inputs:
        assert delivered.get((record.partition, record.offset)) == expected[record.value], (
            f"input {record.partition}:{record.offset} ({record.value[:80]!r}) got "
            f"{delivered.get((record.partition, record.offset))}, expected {expected[record.value]}")
    answered = {orjson.loads(r.value)["spectrum_id"] for r in outputs if r.topic == config.output_topic}
    assert set(good.spectrum_id) <= answered, "every good spectrum gets a result"
