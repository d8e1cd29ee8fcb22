"""The bad-input catalogue: one message per way a producer can get a spectrum wrong, with its reason code.

Each bad message is built from a good spectrum with one thing broken, so the
reason code it earns is the only thing that can differ from a result.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from zstream.io import SPECTRUM_SCHEMA, Reason, SpectrumBatch, encode_spectrum_json, spectrum_records
from zstream.service.clients import ARROW_CONTENT_TYPE, CONTENT_TYPE_HEADER
from zstream.service.message import Message
from zstream.testing.traffic import arrow_message

FILE_ONLY_REASONS = {Reason.INVALID_FITS}
"""Reasons only file readers give; a Kafka message cannot be FITS."""
INJECTED_ONLY_REASONS = {Reason.INTERNAL_ERROR}
"""Reasons no message earns by itself: a bug in decoding or scanning (tests inject one)."""


def _arrow_without_rows() -> Message:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SPECTRUM_SCHEMA) as writer:
        writer.write_table(SPECTRUM_SCHEMA.empty_table())
    return Message(None, sink.getvalue().to_pybytes(), ((CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE.encode()),))


def _json(record: dict, *, key: bytes | None = None) -> Message:
    return Message(key, encode_spectrum_json(record))


def bad_messages(good: SpectrumBatch, max_message_bytes: int) -> list[tuple[Message, Reason]]:
    """Every bad message the service must dead-letter, with the reason it must give.

    The Arrow message with a duplicated id holds two copies of one spectrum: the
    first gets a result (id ``dup-id``), the second the dead letter.

    Parameters
    ----------
    good : SpectrumBatch
        At least one valid spectrum to break.
    max_message_bytes : int
        The service's message size limit (the oversized message exceeds it).

    Returns
    -------
    list of (Message, Reason)
    """
    template = next(iter(spectrum_records(good)))
    wavelength = np.asarray(template["wavelength"], dtype=np.float64)
    n = wavelength.size

    def broken(name: str, **changes) -> dict:
        return template | {"spectrum_id": f"bad-{name}"} | changes

    swapped = wavelength.copy()
    swapped[[10, 11]] = swapped[[11, 10]]
    repeated = wavelength.copy()
    repeated[11] = repeated[10]
    nan_wavelength = wavelength.copy()
    nan_wavelength[5] = np.nan
    far_uv = np.linspace(100.0, 300.0, n)
    negative_ivar = np.asarray(template["ivar"], dtype=np.float32).copy()
    negative_ivar[3] = -1.0
    unscalable_ivar = np.asarray(template["ivar"], dtype=np.float64).copy()
    unscalable_ivar[[3, 4]] = 1e-200, 1e200
    missing_flux = {key: value for key, value in broken("missing-field").items() if key != "flux"}
    arrow_nan = SpectrumBatch(["bad-arrow-nan-wavelength"], [nan_wavelength], [good.flux[0]], [good.ivar[0]])
    duplicated_id = SpectrumBatch(["dup-id", "dup-id"], [good.wavelength[0]] * 2, [good.flux[0]] * 2,
                                  [good.ivar[0]] * 2)
    non_utf8_id = encode_spectrum_json(broken("placeholder")).replace(b'"bad-placeholder"', b'"bad-\xff\xfe-id"')
    nested: object = 1.0
    for _ in range(40):
        nested = [nested]
    return [
        (Message(None, b'{"spectrum_id": "bad-json", "wavelength": [1,'), Reason.INVALID_JSON),
        (Message(None, b"\x00\x01 not an arrow stream", ((CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE.encode()),)),
         Reason.INVALID_ARROW_IPC),
        (Message(None, b"id,flux\n1,2\n", ((CONTENT_TYPE_HEADER, b"text/csv"),)), Reason.UNSUPPORTED_CONTENT_TYPE),
        (_json(missing_flux), Reason.MISSING_FIELD),
        (_json(broken("wrong-type", flux=["bright"] * n)), Reason.WRONG_TYPE),
        (_json(broken("length-mismatch", ivar=template["ivar"][:-7])), Reason.LENGTH_MISMATCH),
        (_json(broken("nan-wavelength", wavelength=nan_wavelength)), Reason.NONFINITE_WAVELENGTH),
        (arrow_message(arrow_nan), Reason.NONFINITE_WAVELENGTH),
        (_json(broken("negative-ivar", ivar=negative_ivar)), Reason.NEGATIVE_IVAR),
        (_json(broken("empty", wavelength=[], flux=[], ivar=[])), Reason.EMPTY_SPECTRUM),
        (_json(broken("unsorted", wavelength=swapped)), Reason.UNSORTED_WAVELENGTH),
        (_json(broken("duplicated-wavelength", wavelength=repeated)), Reason.UNSORTED_WAVELENGTH),
        (_json(broken("far-uv", wavelength=far_uv)), Reason.NO_OVERLAP_WITH_BASIS),
        (Message(None, b"{" + b" " * max_message_bytes + b"}"), Reason.OVERSIZED_MESSAGE),
        (_json(broken("schema-v99", schema_version="99")), Reason.UNKNOWN_SCHEMA_VERSION),
        (arrow_message(duplicated_id), Reason.DUPLICATE_ID_IN_BATCH),
        (Message(None, non_utf8_id), Reason.INVALID_UTF8_ID),
        (Message(None, orjson.dumps([1, 2, 3])), Reason.WRONG_TYPE),
        (_json(broken("too-deep", provenance=nested)), Reason.TOO_DEEP),
        (_json(template | {"spectrum_id": "bad-long-id-" + "x" * 300}), Reason.FIELD_TOO_LARGE),
        (_json(broken("zero-wavelength", wavelength=wavelength - wavelength[0])), Reason.NONPOSITIVE_WAVELENGTH),
        (_arrow_without_rows(), Reason.EMPTY_MESSAGE),
        (_json(broken("unscalable-ivar", ivar=unscalable_ivar)), Reason.UNSCALABLE_IVAR),
    ]
