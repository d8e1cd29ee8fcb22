"""The ledger that the fault tests trust: it must see a missing input, an unknown outcome, a replay and a
replay under another basis version, and must not call a result + duplicate-id dead letter a duplicate."""

from __future__ import annotations

import orjson
from kafka.consumer.fetcher import ConsumerRecord

from zstream.testing.ledger import reconcile

OUT, DLQ = "out", "dlq"


def _record(topic: str, partition: int, offset: int, value: bytes = b"", headers=(), key: bytes | None = None):
    return ConsumerRecord(topic, partition, None, offset, 0, 0, key, value, list(headers), None, -1, len(value), -1)


def _result(partition: int, offset: int, spectrum_id: str, version: str = "v1"):
    value = orjson.dumps({"input_partition": partition, "input_offset": offset, "spectrum_id": spectrum_id,
                          "basis_version": version})
    return _record(OUT, 0, 0, value, key=spectrum_id.encode())


def _dead(partition: int, offset: int, reason: str, spectrum_id: str | None = None):
    headers = [("zstream-reason", reason.encode()), ("zstream-source-partition", str(partition).encode()),
               ("zstream-source-offset", str(offset).encode())]
    if spectrum_id is not None:
        headers.append(("zstream-spectrum-id", spectrum_id.encode()))
    return _record(DLQ, 0, 0, b"raw", headers)


INPUTS = [_record("in", 0, offset) for offset in range(4)] + [_record("in", 1, 0)]


def test_clean_run_is_complete_without_duplicates():
    outputs = [_result(0, 0, "a"), _result(0, 1, "b"), _dead(0, 2, "invalid_json"),
               _result(0, 3, "dup"), _dead(0, 3, "duplicate_id_in_batch", "dup"), _result(1, 0, "c")]
    report = reconcile(INPUTS, outputs, OUT)
    assert report.complete and not report.duplicates, report.summary()
    assert report.versions == {"v1": 4} and report.reasons == {"invalid_json": 1, "duplicate_id_in_batch": 1}


def test_missing_unknown_and_replays_are_reported():
    outputs = [_result(0, 0, "a"), _result(0, 0, "a"), _result(0, 1, "b"), _result(0, 1, "b", "v2"),
               _dead(0, 2, "invalid_json"), _result(1, 0, "c"), _result(5, 9, "ghost")]
    report = reconcile(INPUTS, outputs, OUT)
    assert report.missing == [(0, 3)]
    assert [outcome.spectrum_id for outcome in report.unknown] == ["ghost"]
    assert set(report.duplicates) == {(0, 0, "a"), (0, 1, "b")}
    assert set(report.inconsistent) == {(0, 1, "b")}
    assert not report.complete
