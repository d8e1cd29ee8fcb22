"""Size and nesting bounds of one spectrum record, so that no input can make decoding recurse or balloon.

Every decoded record passes these checks before anything walks it recursively
(JSON Schema validation, error messages, Arrow conversion of pass-through
fields), so hostile input costs at most time linear in its bytes and always
ends as a :class:`~zstream.io.reasons.Reason`: ``too_deep`` or
``field_too_large``. The message byte limit bounds the whole message before
this; these bound each field of it.
"""

from __future__ import annotations

import pyarrow as pa

from zstream.io.reasons import Reason, RecordError

MAX_DEPTH = 32
"""Deepest nesting of a record: the record is level 1, its pixel arrays level 2."""
MAX_ID_CHARS = 256
"""Longest ``spectrum_id`` (it becomes a Kafka key and a header)."""
MAX_PIXELS = 262_144
"""Most pixels of one spectrum (MUSE has 3,681, a DESI coadd 7,781), and most items of any array of numbers."""
MAX_MEMBERS = 256
"""Most fields of one record, at every level (JSON object members; Arrow columns and struct fields)."""
MAX_VALUES = 10_000
"""Most values of a JSON record outside its arrays of numbers (list items, members, scalars)."""
MAX_STRING_CHARS = 10_000
"""Longest string anywhere in a JSON record."""

_FLAT = frozenset({float, int, bool, type(None)})


def check_json_bounds(record: object) -> None:
    """Check the nesting depth and sizes of a parsed JSON record without recursion.

    An array of numbers (booleans, nulls) counts as one value and must hold at
    most ``MAX_PIXELS`` items; everything else is walked and counted.

    Parameters
    ----------
    record : object
        The parsed record (its pixel arrays may be cut to a sample first).

    Raises
    ------
    RecordError
        ``too_deep`` (nested deeper than ``MAX_DEPTH``) or ``field_too_large``
        (see the ``MAX_*`` bounds of this module).
    """
    pending = [(record, 1)]
    n_values = n_members = 0
    while pending:
        value, depth = pending.pop()
        n_values += 1
        if n_values > MAX_VALUES:
            raise RecordError(Reason.FIELD_TOO_LARGE, f"record holds more than {MAX_VALUES} values outside arrays of numbers")
        if isinstance(value, str):
            _check_string(value)
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise RecordError(Reason.TOO_DEEP, f"record is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, list):
            if set(map(type, value)) <= _FLAT:
                if len(value) > MAX_PIXELS:
                    raise RecordError(Reason.FIELD_TOO_LARGE, f"an array of {len(value)} numbers exceeds the limit of {MAX_PIXELS}")
                continue
            pending.extend((item, depth + 1) for item in value)
            continue
        n_members += len(value)
        if n_members > MAX_MEMBERS:
            raise RecordError(Reason.FIELD_TOO_LARGE, f"record has more than {MAX_MEMBERS} fields (counting nested objects)")
        for key in value:
            _check_string(key)
        pending.extend((item, depth + 1) for item in value.values())


def check_arrow_bounds(schema: pa.Schema) -> None:
    """Check an Arrow schema as a JSON record is checked: its nesting depth (a row is level 1, a list
    column level 2) and its number of fields (columns and struct fields at every level).

    Raises
    ------
    RecordError
        ``too_deep`` (naming the column) or ``field_too_large``.
    """
    n_members = len(schema)
    for field in schema:
        pending = [(field.type, 2)]
        while pending:
            data_type, depth = pending.pop()
            if data_type.num_fields and depth > MAX_DEPTH:
                raise RecordError(Reason.TOO_DEEP, f"column {field.name!r} is nested more than {MAX_DEPTH} levels deep")
            if pa.types.is_struct(data_type):
                n_members += data_type.num_fields
            pending.extend((data_type.field(i).type, depth + 1) for i in range(data_type.num_fields))
    if n_members > MAX_MEMBERS:
        raise RecordError(Reason.FIELD_TOO_LARGE, f"table has {n_members} fields (counting struct fields), limit is {MAX_MEMBERS}")


def check_id_length(spectrum_id: str) -> None:
    """Raise ``field_too_large`` when ``spectrum_id`` is longer than ``MAX_ID_CHARS``."""
    if len(spectrum_id) > MAX_ID_CHARS:
        raise RecordError(
            Reason.FIELD_TOO_LARGE, f"spectrum_id is {len(spectrum_id)} characters long, limit is {MAX_ID_CHARS}"
        )


def check_pixel_count(n_pixels: int) -> None:
    """Raise ``field_too_large`` when a spectrum has more than ``MAX_PIXELS`` pixels."""
    if n_pixels > MAX_PIXELS:
        raise RecordError(Reason.FIELD_TOO_LARGE, f"spectrum has {n_pixels} pixels, limit is {MAX_PIXELS}")


def _check_string(text: str) -> None:
    if len(text) > MAX_STRING_CHARS:
        raise RecordError(Reason.FIELD_TOO_LARGE, f"a string of {len(text)} characters exceeds the limit of {MAX_STRING_CHARS}")
