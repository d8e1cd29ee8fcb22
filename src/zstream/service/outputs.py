"""The records the service writes: result messages and dead letters (shared by serve and replay)."""

from __future__ import annotations

from zstream.io import encode_result_json
from zstream.io.meta import meta_rows
from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, header
from zstream.service.message import Message
from zstream.service.processing import DeadLetter, InputRecord, ProcessedBatch

REASON_HEADER = "zstream-reason"
ERROR_HEADER = "zstream-error"
SPECTRUM_ID_HEADER = "zstream-spectrum-id"
BASIS_VERSION_HEADER = "basis-version"


def result_records(processed: ProcessedBatch, processing_ms: float) -> list[dict]:
    """Every result record of a processed batch: scan row, origin, timing and pass-through ``meta``."""
    metas = meta_rows(processed.spectra.extra, processed.results.num_rows)
    return [result_record(row, source, processing_ms) | {"meta": meta, "meta_dropped": dropped or None}
            for row, source, (meta, dropped) in zip(processed.results.to_pylist(), processed.sources, metas)]


def result_record(row: dict, source: InputRecord, processing_ms: float) -> dict:
    """A scan result row plus where its input came from and how long the batch took.

    Parameters
    ----------
    row : dict
        One ``RESULT_SCHEMA`` row (includes ``basis_version``).
    source : InputRecord
        The input message of the spectrum.
    processing_ms : float
        Milliseconds from the batch being polled to its results being encoded.
    """
    return row | {
        "input_topic": source.topic,
        "input_partition": source.partition,
        "input_offset": source.offset,
        "processing_ms": round(processing_ms, 3),
    }


def result_message(record: dict) -> Message:
    """The output-topic message of a result record: keyed by ``spectrum_id``, JSON value."""
    return Message(
        record["spectrum_id"].encode(),
        encode_result_json(record),
        ((CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.encode()), (BASIS_VERSION_HEADER, record["basis_version"].encode())),
    )


def dead_letter_message(letter: DeadLetter) -> Message:
    """The DLQ message of a refused input: the original bytes, with reason, error text and origin in headers."""
    source = letter.source
    headers = [
        (CONTENT_TYPE_HEADER, header(source.headers, CONTENT_TYPE_HEADER) or JSON_CONTENT_TYPE.encode()),
        (REASON_HEADER, letter.reason.value.encode()),
        (ERROR_HEADER, letter.detail.encode("utf-8", "replace")),
        ("zstream-source-topic", source.topic.encode()),
        ("zstream-source-partition", str(source.partition).encode()),
        ("zstream-source-offset", str(source.offset).encode()),
    ]
    key = None
    if letter.spectrum_id is not None:
        key = letter.spectrum_id.encode("utf-8", "surrogateescape")
        headers.append((SPECTRUM_ID_HEADER, key))
    return Message(key, source.value, tuple(headers))
