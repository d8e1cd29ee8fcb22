"""Kafka message codec: bytes → validated spectra (JSON or Arrow IPC), records → JSON bytes.

JSON records are checked against ``schemas/spectrum.schema.json``. Fast path: the
per-pixel arrays are type-checked in bulk (the set of their element types) and
the compiled JSON Schema validator sees them cut to one element (the first one of
a wrong type, if any), so schema validation cost does not grow with the number of
pixels. Before any of that the record's nesting and field sizes are bounded
(:mod:`zstream.io.limits`), so decoding never raises anything but a
:class:`~zstream.io.reasons.RecordError`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable

import numpy as np
import orjson
import pyarrow as pa

from zstream.io.limits import check_json_bounds
from zstream.io.reasons import Reason, RecordError, Reject, internal_error
from zstream.io.records import SpectrumBatch
from zstream.io.schema import json_validator
from zstream.io.table import RECORD_COLUMNS, table_to_spectra
from zstream.io.validate import BatchCollector, check_schema_version, readable_id

JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Default message size limit; one MUSE spectrum is ~100 KiB as JSON, ~60 KiB in Arrow IPC."""

ARROW_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The marker every Arrow IPC stream writer puts last; a stream without it was cut short."""
ORJSON_DEPTH_ERROR = "depth limit exceeded"
"""How orjson's own nesting guard (1,024 levels) words its error."""

# Most specific first: the first matching schema violation names the reason.
_SCHEMA_ERROR_REASONS = (
    ("required", Reason.MISSING_FIELD),
    ("minLength", Reason.MISSING_FIELD),
    ("maxLength", Reason.FIELD_TOO_LARGE),
    ("type", Reason.WRONG_TYPE),
    ("minItems", Reason.EMPTY_SPECTRUM),
    ("maxItems", Reason.FIELD_TOO_LARGE),
    ("exclusiveMinimum", Reason.NONPOSITIVE_WAVELENGTH),
)
_NUMBER_OR_NULL = frozenset({float, int, type(None)})
# Per-pixel arrays and the element types the schema allows in them (checked in bulk).
_PIXEL_ARRAYS = {"wavelength": _NUMBER_OR_NULL, "flux": _NUMBER_OR_NULL, "ivar": _NUMBER_OR_NULL, "mask": frozenset({bool})}


def decode_message(
    value: bytes, *, content_type: str = JSON, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> tuple[SpectrumBatch, list[Reject]]:
    """Decode and validate one Kafka message.

    Parameters
    ----------
    value : bytes
        Message payload: one JSON spectrum object, or an Arrow IPC stream of spectrum rows.
    content_type : str
        ``"application/json"`` or ``"application/vnd.apache.arrow.stream"``.
    max_bytes : int
        Size limit, checked before any decoding.

    Returns
    -------
    batch : SpectrumBatch
        Accepted spectra (0 or 1 for JSON).
    rejects : list of Reject
        Per-record problems.

    Raises
    ------
    RecordError
        Whole-message failure: ``oversized_message``, ``invalid_json``, ``invalid_utf8_id``, ``too_deep``,
        ``invalid_arrow_ipc``, ``empty_message``, ``unsupported_content_type``, or a
        column-level ``missing_field`` / ``wrong_type`` / ``too_deep`` in an Arrow
        message. Nothing else: hostile input is a reason, never an exception.
    """
    if len(value) > max_bytes:
        raise RecordError(Reason.OVERSIZED_MESSAGE, f"message is {len(value)} bytes, limit is {max_bytes}")
    content_type = content_type.split(";")[0].strip().lower()  # drop parameters such as charset
    try:
        return _decode(value, content_type)
    except RecordError:
        raise
    except Exception as error:  # noqa: BLE001 (a decoder bug refuses this message only)
        raise internal_error(error, f"decoding a {content_type} message") from error


def _decode(value: bytes, content_type: str) -> tuple[SpectrumBatch, list[Reject]]:
    """:func:`decode_message` after the size check: parse and validate by content type."""
    if content_type == JSON:
        collector = BatchCollector()
        extras = [_add_json_record(collector, parse_json(value))]
        return collector.finish(_extra_table(extras, collector.kept))
    if content_type == ARROW_STREAM:
        table = _read_ipc_stream(value)
        if not table.num_rows:
            raise RecordError(Reason.EMPTY_MESSAGE, "Arrow IPC stream holds a schema but no spectrum rows")
        return table_to_spectra(table)
    raise RecordError(
        Reason.UNSUPPORTED_CONTENT_TYPE, f"content type {content_type!r} not supported; use {JSON!r} or {ARROW_STREAM!r}"
    )


def decode_json_records(values: Iterable[bytes], *, labels: Iterable[str] | None = None) -> tuple[SpectrumBatch, list[Reject]]:
    """Decode many JSON spectrum objects (e.g. JSONL lines); unparseable ones become rejects.

    Parameters
    ----------
    values : iterable of bytes
        One JSON object each.
    labels : iterable of str, optional
        Where each value came from (e.g. ``"spectra.jsonl line 7"``), quoted in
        the detail of a reject that has no readable id.

    Returns
    -------
    batch : SpectrumBatch
    rejects : list of Reject
    """
    collector = BatchCollector()
    extras = []
    labels = labels if labels is not None else (f"record {number}" for number in itertools.count(1))
    for value, label in zip(values, labels):
        try:
            extras.append(_add_json_record(collector, parse_json(value)))
        except RecordError as error:  # unparseable: no position was taken yet
            collector.skip(None, RecordError(error.reason, f"{label}: {error.detail}"))
            extras.append({})
        except Exception as error:  # noqa: BLE001 (a decoder bug refuses this record only)
            collector.skip(None, internal_error(error, f"decoding {label}"))
            extras.append({})
    return collector.finish(_extra_table(extras, collector.kept))


def parse_json(value: bytes) -> object:
    """Parse JSON bytes with orjson (no NaN/Infinity, numbers as int64/uint64/float64, at most 1,024 levels).

    Raises
    ------
    RecordError
        ``too_deep`` beyond orjson's nesting guard, ``invalid_utf8_id`` when the
        text is otherwise JSON but its spectrum_id is not valid UTF-8, else ``invalid_json``.
    """
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        problem = str(error)
    if problem.startswith(ORJSON_DEPTH_ERROR):
        raise RecordError(Reason.TOO_DEEP, f"JSON nested too deep ({problem})")
    if _has_non_utf8_id(value):
        raise RecordError(Reason.INVALID_UTF8_ID, "spectrum_id is not valid UTF-8 (JSON text must be UTF-8)")
    raise RecordError(Reason.INVALID_JSON, f"not valid JSON: {problem}")


def _has_non_utf8_id(value: bytes) -> bool:
    """Whether text orjson refused parses as an object whose spectrum_id is not valid UTF-8.

    orjson refuses text with invalid UTF-8 or lone surrogate escapes outright; the
    standard parser keeps them as surrogates, so a bad id can get its own reason.
    The result is used for that verdict only, never decoded further.
    """
    try:
        record = json.loads(value.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):  # not JSON at all, or nested past the interpreter's stack
        return False
    if not isinstance(record, dict) or not isinstance(record.get("spectrum_id"), str):
        return False
    try:
        record["spectrum_id"].encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def encode_spectrum_json(record: dict) -> bytes:
    """Encode a spectrum record (arrays may be numpy) as JSON bytes; NaN becomes null."""
    return _dumps(record)


def encode_result_json(result_row: dict) -> bytes:
    """Encode a result row (a ``RESULT_SCHEMA`` dict, numpy values allowed) as JSON bytes; NaN becomes null.

    A ``meta`` given as JSON text (the column form of result files) is written as the object it holds.
    """
    if isinstance(result_row.get("meta"), str):
        result_row = result_row | {"meta": orjson.Fragment(result_row["meta"])}
    return _dumps(result_row)


def _dumps(record: dict) -> bytes:
    contiguous = {key: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value for key, value in record.items()}
    return orjson.dumps(contiguous, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_result_json(value: bytes) -> dict:
    """Parse and validate one result message against ``schemas/result.schema.json``.

    Raises
    ------
    RecordError
        ``invalid_json`` or the reason of the first schema violation.
    """
    record = parse_json(value)
    _raise_first_schema_error("result", record)
    return record


def _add_json_record(collector: BatchCollector, record: object) -> dict:
    """Validate one parsed JSON object into the collector; return its pass-through fields."""
    spectrum_id = readable_id(record.get("spectrum_id")) if isinstance(record, dict) else None
    try:
        if not isinstance(record, dict):
            raise RecordError(Reason.WRONG_TYPE, f"message is a JSON {type(record).__name__}, expected an object")
        envelope = schema_envelope(record)
        check_json_bounds(envelope)
        check_schema_version(record.get("schema_version"))
        arrays = _validate_spectrum_json(record, envelope)
    except RecordError as error:
        collector.skip(spectrum_id, error)
        return {}
    collector.add(
        record["spectrum_id"],
        arrays["wavelength"],
        arrays["flux"],
        arrays["ivar"],
        mask=arrays["mask"],
        z=record.get("z"),
        schema_version=record.get("schema_version"),
    )
    return {key: value for key, value in record.items() if key not in RECORD_COLUMNS}


def schema_envelope(record: dict) -> dict:
    """``record`` with each pixel array cut to one element: its first element of a wrong type, else its first.

    The element types of a pixel array are checked in bulk here, so the JSON Schema
    validator and :func:`~zstream.io.limits.check_json_bounds` see the structure only.
    """
    envelope = dict(record)
    for name, allowed in _PIXEL_ARRAYS.items():
        value = record.get(name)
        if isinstance(value, list) and value:
            if set(map(type, value)) <= allowed:
                envelope[name] = value[:1]
            else:
                envelope[name] = [next(item for item in value if type(item) not in allowed)]
    return envelope


def _validate_spectrum_json(record: dict, envelope: dict) -> dict[str, np.ndarray]:
    """Schema-check a spectrum object by its envelope; return its pixel arrays (float64, null → NaN; mask bool)."""
    _raise_first_schema_error("spectrum", envelope)
    arrays = {name: np.array(record[name], dtype=np.float64) for name in ("wavelength", "flux", "ivar")}
    mask = record.get("mask")
    arrays["mask"] = None if mask is None else np.array(mask, dtype=bool)
    return arrays


def _raise_first_schema_error(name: str, instance: object) -> None:
    errors = list(json_validator(name).iter_errors(instance))
    if not errors:
        return
    for keyword, reason in _SCHEMA_ERROR_REASONS:
        for error in errors:
            if error.validator == keyword:
                if keyword == "type" and error.instance is None and len(error.path) == 1:
                    reason = Reason.MISSING_FIELD  # a required field given as null
                raise RecordError(reason, _describe(error))
    raise RecordError(Reason.WRONG_TYPE, _describe(errors[0]))


def _describe(error) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "record"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return f"{where}: {message}"


def _extra_table(extras: list[dict], kept: list[int]) -> pa.Table | None:
    rows = [extras[i] for i in kept]
    if not any(rows):
        return None
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, OverflowError) as error:  # e.g. an integer beyond int64
        raise RecordError(Reason.WRONG_TYPE, f"pass-through fields do not fit one Arrow type: {error}") from None


def _read_ipc_stream(value: bytes) -> pa.Table:
    if not value.endswith(ARROW_END_OF_STREAM):
        raise RecordError(Reason.INVALID_ARROW_IPC, "Arrow IPC stream lacks its end-of-stream marker (cut short?)")
    try:
        table = pa.ipc.open_stream(value).read_all()
        table.validate(full=True)  # a corrupt offset would otherwise be read out of bounds later
        return table
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:  # validate decodes the column names too
        raise RecordError(Reason.INVALID_ARROW_IPC, f"not a readable Arrow IPC stream: {error}") from None
