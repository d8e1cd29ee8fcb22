"""Seeded generators of hostile messages: what an attacker or a badly broken producer could send.

Each generator draws from a ``numpy.random.Generator`` so a seed gives the same
messages on every run. Kinds: deep nesting (in every field and as the whole
message), huge and odd ids, numbers written with thousands of digits, extreme and
non-numeric numbers, wrong types at every level, oversized pass-through fields,
truncated, bit-flipped or crafted Arrow IPC (deep column types, bad metadata,
wrong column types, no rows), and random bytes under random content types.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa

from zstream.io import SpectrumBatch, spectra_to_table, spectrum_records
from zstream.service.clients import ARROW_CONTENT_TYPE, CONTENT_TYPE_HEADER
from zstream.service.message import Message

FIELDS = ("spectrum_id", "wavelength", "flux", "ivar", "mask", "z", "schema_version", "extra")
_JSON = ((CONTENT_TYPE_HEADER, b"application/json"),)
_ARROW = ((CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE.encode()),)


def _text(record: dict) -> dict[str, bytes]:
    """The record's fields as JSON text fragments, so any field can be replaced by raw hostile text."""
    return {key: orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY) for key, value in record.items()}


def _assemble(fields: dict[str, bytes]) -> bytes:
    return b"{" + b",".join(orjson.dumps(key) + b":" + value for key, value in fields.items()) + b"}"


def _nested(rng: np.random.Generator, depth: int) -> bytes:
    """``depth`` levels of arrays and objects around a number, as JSON text."""
    opens = rng.integers(0, 2, depth)
    head = b"".join(b"[" if kind else b'{"k":' for kind in opens)
    tail = b"".join(b"]" if kind else b"}" for kind in opens[::-1])
    return head + b"1" + tail


def _long_number(rng: np.random.Generator) -> bytes:
    digits = b"9" * int(rng.integers(300, 6000))
    return [digits, b"-" + digits, b"0." + b"0" * len(digits) + b"1", b"1e" + digits[:400], b"1e-" + digits[:400],
            b"18446744073709551616", b"-9223372036854775809", digits + b"." + digits][int(rng.integers(0, 8))]


_ODD_NUMBERS = (b"NaN", b"Infinity", b"-Infinity", b"1e308", b"-1e308", b"5e-324", b"-0.0", b"1e400", b"0",
                b"-1", b"true", b"false", b"null", b'"1.5"', b'""', b"{}", b"[]", b"[1]")


def _odd_value(rng: np.random.Generator) -> bytes:
    """A JSON value of a random type, most of them wrong for any given field."""
    choice = int(rng.integers(0, 8))
    if choice == 0:
        return _ODD_NUMBERS[int(rng.integers(0, len(_ODD_NUMBERS)))]
    if choice == 1:
        return _long_number(rng)
    if choice == 2:
        return _nested(rng, int(rng.integers(2, 60)))
    if choice == 3:
        return orjson.dumps("x" * int(rng.integers(0, 20_000)))
    if choice == 4:
        return orjson.dumps({"a": [1, "b", None, {"c": True}]})
    if choice == 5:
        return b"[" + b",".join(_ODD_NUMBERS[int(i)] for i in rng.integers(0, len(_ODD_NUMBERS), 5)) + b"]"
    if choice == 6:
        return orjson.dumps(list(range(int(rng.integers(0, 15_000)))))
    return orjson.dumps(rng.normal(size=int(rng.integers(0, 50))).tolist())


_ODD_IDS = ("", " ", "\x00", "a\nb", "\u202e-rtl", "😀" * 100, "id\x7f", "a" * 257, "a" * 20_000, "\\")


def _odd_id(rng: np.random.Generator) -> bytes:
    choice = int(rng.integers(0, 5))
    if choice == 0:
        return orjson.dumps(_ODD_IDS[int(rng.integers(0, len(_ODD_IDS)))])
    if choice == 1:
        return b'"bad-\xff\xfe-id"'
    if choice == 2:
        return b'"lone-\\udc80-surrogate"'
    if choice == 3:
        return _long_number(rng)
    return _odd_value(rng)


def _with_first_pixel(array_text: bytes, value: bytes) -> bytes:
    """A JSON array's text with its first element replaced by ``value`` (raw JSON text)."""
    return b"[" + value + array_text[array_text.index(b","):]


def _json_message(rng: np.random.Generator, template: dict, name: str) -> bytes:
    fields = _text(template | {"spectrum_id": name, "extra": {"field": "F1", "ra": 150.1}})
    kind = int(rng.integers(0, 7))
    field = FIELDS[int(rng.integers(0, len(FIELDS)))]
    if kind == 0:  # deep nesting in one field, or as the whole message
        depth = int(rng.choice([33, 100, 1023, 1024, 1025, 5000, 20_000]))
        if rng.random() < 0.2:
            return _nested(rng, depth)
        fields[field] = _nested(rng, depth)
    elif kind == 1:
        fields["spectrum_id"] = _odd_id(rng)
    elif kind == 2:  # one pixel of an array, or a scalar field, written with thousands of digits
        if field in ("wavelength", "flux", "ivar"):
            fields[field] = _with_first_pixel(fields[field], _long_number(rng))
        else:
            fields[field] = _long_number(rng)
    elif kind == 3:  # an extreme or non-numeric value inside a pixel array
        name_ = ("wavelength", "flux", "ivar")[int(rng.integers(0, 3))]
        fields[name_] = _with_first_pixel(fields[name_], _ODD_NUMBERS[int(rng.integers(0, len(_ODD_NUMBERS)))])
    elif kind == 4:  # a wrong type for one field
        fields[field] = _odd_value(rng)
    elif kind == 5:  # many pass-through fields, around the bound of 10,000 values
        many = orjson.dumps({f"x{i}": i for i in range(int(rng.integers(5_000, 12_000)))})
        return _assemble(fields)[:-1] + b"," + many[1:]
    else:  # a wrong type at the top level
        return [b"[]", b'"text"', b"42", b"null", b"true", b"[" + _assemble(fields) + b"]"][int(rng.integers(0, 6))]
    return _assemble(fields)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _crafted_table(rng: np.random.Generator, table: pa.Table) -> pa.Table:
    """A well-formed Arrow table with one hostile twist: deep or odd column types, bad metadata, no rows."""
    n = table.num_rows
    choice = int(rng.integers(0, 6))
    if choice == 0:  # a pass-through column nested 33-60 levels deep
        data_type: pa.DataType = pa.float64()
        for _ in range(int(rng.integers(33, 60))):
            data_type = pa.list_(data_type)
        return table.append_column("deep", pa.nulls(n, data_type))
    if choice == 1:  # a shared grid in the metadata that is not a list of numbers
        garbage = [b"[[1,2],[3]]", b'{"a": 1}', b"not json", b"[" * 2000, b"1"][int(rng.integers(0, 5))]
        return table.drop_columns(["wavelength"]).replace_schema_metadata({b"zstream:wavelength": garbage})
    if choice == 2:  # a record column of the wrong type
        name = ["spectrum_id", "wavelength", "flux", "ivar", "z"][int(rng.integers(0, 5))]
        odd = [pa.array([{"a": 1}] * n), pa.array([[["x"]]] * n), pa.array([True] * n), pa.array(["1.0"] * n)]
        return table.set_column(table.schema.get_field_index(name), name, odd[int(rng.integers(0, len(odd)))])
    if choice == 3:
        return table.slice(0, 0)
    if choice == 4:  # a record column twice
        return table.append_column("flux", table.column("flux"))
    values = pa.array(rng.choice([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, 5e-324], size=4).tolist())
    flux = pa.ListArray.from_arrays(pa.array([0, 4] * 1, pa.int32()), values)
    return pa.table({"spectrum_id": ["crafted"], "wavelength": flux, "flux": flux, "ivar": flux})


def _arrow_bytes(rng: np.random.Generator, good: SpectrumBatch) -> bytes:
    rows = sorted(rng.choice(len(good), size=min(len(good), int(rng.integers(1, 4))), replace=False).tolist())
    table = spectra_to_table(good.take(rows))
    choice = rng.random()
    if choice < 0.3:
        return _ipc(_crafted_table(rng, table))
    value = _ipc(table)
    if choice < 0.65:
        return value[: int(rng.integers(0, len(value)))]
    flipped = bytearray(value)
    for position in rng.integers(0, len(value), int(rng.integers(1, 20))):
        flipped[position] ^= int(rng.integers(1, 256))
    return bytes(flipped)


_CONTENT_TYPES = (b"application/json", ARROW_CONTENT_TYPE.encode(), b"text/plain", b"", b"\xff\xfe",
                  b"application/json; charset=latin-1", b"APPLICATION/VND.APACHE.ARROW.STREAM")


def hostile_messages(rng: np.random.Generator, good: SpectrumBatch, n: int, prefix: str = "hostile") -> list[Message]:
    """``n`` hostile messages built around the spectra of ``good`` (seeded by ``rng``).

    Parameters
    ----------
    rng : numpy.random.Generator
    good : SpectrumBatch
        Valid spectra to break (at least one).
    n : int
    prefix : str
        Prefix of the spectrum ids the messages carry (where they carry a readable one).

    Returns
    -------
    list of Message
    """
    template = next(iter(spectrum_records(good)))
    makers: list[Callable[[int], Message]] = [
        lambda i: Message(None, _json_message(rng, template, f"{prefix}-{i}"), _JSON),
        lambda i: Message(None, _json_message(rng, template, f"{prefix}-{i}"), _JSON),
        lambda i: Message(None, _json_message(rng, template, f"{prefix}-{i}"), _JSON),
        lambda i: Message(None, _arrow_bytes(rng, good), _ARROW),
        lambda i: Message(None, rng.bytes(int(rng.integers(0, 3000))),
                          ((CONTENT_TYPE_HEADER, _CONTENT_TYPES[int(rng.integers(0, len(_CONTENT_TYPES)))]),)),
    ]
    return [makers[int(rng.integers(0, len(makers)))](i) for i in range(n)]
