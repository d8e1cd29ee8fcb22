"""Kafka message codec: bytes → validated spectra (JSON or Arrow IPC), records → JSON bytes.

JSON records are checked against ``schemas/spectrum.schema.json``. Fast path: the
per-pixel arrays are type-checked in bulk (the set of their element types) and
the compiled JSON Schema validator sees them truncated to one element, so schema
validation cost does not grow with the number of pixels; an array holding any
other element type goes through the full validator for an exact reason.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable

import numpy as np
import orjson
import pyarrow as pa

from zstream.io.reasons import Reason, RecordError, Reject
from zstream.io.records import SpectrumBatch
from zstream.io.schema import json_validator
from zstream.io.table import RECORD_COLUMNS, table_to_spectra
from zstream.io.validate import BatchCollector, check_schema_version, readable_id

JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Default message size limit; one MUSE spectrum is ~100 KiB as JSON, ~60 KiB in Arrow IPC."""

# Most specific first: the first matching schema violation names the reason.
_SCHEMA_ERROR_REASONS = (
    ("required", Reason.MISSING_FIELD),
    ("minLength", Reason.MISSING_FIELD),
    ("type", Reason.WRONG_TYPE),
    ("minItems", Reason.EMPTY_SPECTRUM),
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
        Whole-message failure: ``oversized_message``, ``invalid_json``,
        ``invalid_arrow_ipc``, ``unsupported_content_type``, or a column-level
        ``missing_field`` / ``wrong_type`` in an Arrow message.
    """
    if len(value) > max_bytes:
        raise RecordError(Reason.OVERSIZED_MESSAGE, f"message is {len(value)} bytes, limit is {max_bytes}")
    content_type = content_type.split(";")[0].strip().lower()  # drop parameters such as charset
    if content_type == JSON:
        collector = BatchCollector()
        extras = [_add_json_record(collector, parse_json(value))]
        return collector.finish(_extra_table(extras, collector.kept))
    if content_type == ARROW_STREAM:
        return table_to_spectra(_read_ipc_stream(value))
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
            record = parse_json(value)
        except RecordError as error:
            collector.skip(None, RecordError(error.reason, f"{label}: {error.detail}"))
            extras.append({})
            continue
        extras.append(_add_json_record(collector, record))
    return collector.finish(_extra_table(extras, collector.kept))


def parse_json(value: bytes) -> object:
    """Parse JSON bytes; text that is valid JSON but not valid UTF-8 is returned with surrogate escapes.

    Raises
    ------
    RecordError
        ``invalid_json``.
    """
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        orjson_error = error
    try:  # orjson refuses non-UTF-8 text outright; keep it so a bad id gets its own reason
        return json.loads(value.decode("utf-8", "surrogateescape"))
    except ValueError:
        raise RecordError(Reason.INVALID_JSON, f"not valid JSON: {orjson_error}") from None


def encode_spectrum_json(record: dict) -> bytes:
    """Encode a spectrum record (arrays may be numpy) as JSON bytes; NaN becomes null."""
    return _dumps(record)


def encode_result_json(result_row: dict) -> bytes:
    """Encode a result row (a ``RESULT_SCHEMA`` dict, numpy values allowed) as JSON bytes; NaN becomes null."""
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
        check_schema_version(record.get("schema_version"))
        arrays = _validate_spectrum_json(record)
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


def _validate_spectrum_json(record: dict) -> dict[str, np.ndarray]:
    """Schema-check a spectrum object; return its pixel arrays (numbers as float64 with null → NaN, mask as bool)."""
    envelope = dict(record)
    for name, allowed in _PIXEL_ARRAYS.items():
        value = record.get(name)
        if isinstance(value, list) and value and set(map(type, value)) <= allowed:
            envelope[name] = value[:1]  # elements already checked; the schema sees the structure only
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
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise RecordError(Reason.WRONG_TYPE, f"pass-through fields differ in type between records: {error}") from None


def _read_ipc_stream(value: bytes) -> pa.Table:
    try:
        return pa.ipc.open_stream(value).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise RecordError(Reason.INVALID_ARROW_IPC, f"not a readable Arrow IPC stream: {error}") from None
