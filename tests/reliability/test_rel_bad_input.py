"""Bad-input catalogue through the service's batch logic: each bad message → one dead letter with its
specific reason; the good spectra around them get exactly the results they get alone; the reason table
in docs/reliability.md is the enum's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from kafka.consumer.fetcher import ConsumerRecord

from zstream.io import Reason, load_basis
from zstream.io.messages import decode_message
from zstream.io.reasons import RecordError
from zstream.service.message import Message
from zstream.service.processing import process_records
from zstream.service.serving import build_serving
from zstream.sim import simulate
from zstream.testing.traffic import json_messages

from bad_inputs import FILE_ONLY_REASONS, INJECTED_ONLY_REASONS, bad_messages
from reliability_helpers import make_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def _record(message: Message, offset: int) -> ConsumerRecord:
    """A consumed message as kafka-python hands it to the service."""
    return ConsumerRecord("spectra", 0, None, offset, 1_700_000_000_000, 0, message.key, message.value,
                          list(message.headers), None, -1, len(message.value), -1)


@pytest.fixture(scope="module")
def serving(basis_files):
    """The first test basis ready to scan, and settings naming it."""
    config = make_config("127.0.0.1:1", basis_files[0], Path("."))
    return build_serving(load_basis(basis_files[0]), config.scan_config(), torch.device("cpu")), config


def test_every_bad_message_gets_its_reason_and_good_ones_are_untouched(serving):
    serving_basis, config = serving
    good, _ = simulate(6, seed=5)
    catalogue = bad_messages(good, config.max_message_bytes)
    good_messages = list(json_messages(good))
    interleaved = [message for pair in zip(good_messages, [m for m, _ in catalogue]) for message in pair]
    interleaved += [m for m, _ in catalogue[len(good_messages):]]
    records = [_record(message, offset) for offset, message in enumerate(interleaved)]
    expected_reason = {message.value: reason for message, reason in catalogue}

    processed = process_records(records, serving_basis, max_message_bytes=config.max_message_bytes)

    assert sorted(letter.reason for letter in processed.dead_letters) == sorted(r for _, r in catalogue)
    for letter in processed.dead_letters:
        assert letter.reason == expected_reason[letter.source.value], letter.detail
        assert letter.detail and len(letter.detail.splitlines()) == 1
    assert {r for _, r in catalogue} == set(Reason) - FILE_ONLY_REASONS - INJECTED_ONLY_REASONS, \
        "catalogue must cover every message reason"
    # the good spectra (and the first copy of the duplicated id) are scanned, nothing else
    assert processed.results.column("spectrum_id").to_pylist() == [*good.spectrum_id, "dup-id"]
    assert processed.spectra.spectrum_id == [*good.spectrum_id, "dup-id"]
    # bad neighbours change nothing: the good results equal a scan of the good spectra alone
    alone = process_records([_record(m, i) for i, m in enumerate(good_messages)], serving_basis,
                            max_message_bytes=config.max_message_bytes)
    assert processed.results.slice(0, len(good)).to_pylist() == alone.results.to_pylist()


def test_size_limit_is_checked_before_decoding():
    too_big = b"\xff" * 1001  # not JSON and not Arrow: only a pre-decode check can call it oversized
    for content_type in ("application/json", "application/vnd.apache.arrow.stream", "text/plain"):
        with pytest.raises(RecordError) as caught:
            decode_message(too_big, content_type=content_type, max_bytes=1000)
        assert caught.value.reason is Reason.OVERSIZED_MESSAGE


def test_docs_reason_table_is_the_enum():
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", DOCS.read_text(), flags=re.MULTILINE))
    assert rows == {reason.value: reason.description for reason in Reason}
