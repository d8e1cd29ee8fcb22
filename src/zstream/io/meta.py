"""Pass-through metadata: a reduction system's own fields, carried from each spectrum to its result.

Fields of an input record outside the spectrum contract (``SPECTRUM_SCHEMA`` plus the
known optional ``spectype`` and ``sky``, and not named like a result field) — ra, dec, exposure id, field, pipeline
version… — come back in the result under ``meta``, a JSON object, whichever way
the spectrum arrived (JSON message, Arrow IPC message, file). The object is bounded:
fields are kept in input order while its JSON form stays within
:data:`META_MAX_BYTES`; the names of the fields that did not fit are listed in
``meta_dropped``, so nothing disappears without a trace and a result is never
refused for its metadata. Null fields are left out (a field one record of a batch
lacks is null in the batch's columns).
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from zstream.io.schema import RESULT_SCHEMA, SPECTRUM_SCHEMA

META_MAX_BYTES = 4096
"""Largest ``meta`` object, in bytes of its compact JSON form."""
CONTRACT_FIELDS = frozenset(SPECTRUM_SCHEMA.names) | {"spectype", "sky"} | frozenset(RESULT_SCHEMA.names)
"""Not metadata: fields the scan reads or the spectrum schema names, and result fields (an archived
spectrum carries its earlier basis_version, delta_chi2, p_source and p_z_ok; a result names its own)."""


def meta_rows(extra: pa.Table | None, n_rows: int) -> list[tuple[dict | None, list[str]]]:
    """Per spectrum, its pass-through ``meta`` object (None when it has none) and the fields dropped from it.

    Parameters
    ----------
    extra : pyarrow.Table or None
        Pass-through columns of a batch (``SpectrumBatch.extra``), ``n_rows`` rows.
    n_rows : int

    Returns
    -------
    list of (dict or None, list of str)
    """
    names = [] if extra is None else [name for name in extra.column_names if name not in CONTRACT_FIELDS]
    if not names:
        return [(None, [])] * n_rows
    return [_bounded(row) for row in extra.select(names).to_pylist()]


def _bounded(row: dict) -> tuple[dict | None, list[str]]:
    kept: dict = {}
    dropped: list[str] = []
    size = 2  # the braces
    for name, value in row.items():
        if value is None:
            continue
        text = _dumps({name: value})  # values JSON cannot hold (bytes, timestamps) become their text
        item = len(text) - 2 + (1 if kept else 0)  # "name":value, plus a comma
        if size + item <= META_MAX_BYTES:
            kept[name] = orjson.loads(text)[name]
            size += item
        else:
            dropped.append(name)
    return (kept or None), dropped


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def meta_json(meta: dict | None) -> str | None:
    """``meta`` as JSON text: how Parquet and Arrow result files store it (one string column)."""
    return None if meta is None else _dumps(meta).decode()


META_FIELDS = (pa.field("meta", pa.string()), pa.field("meta_dropped", pa.list_(pa.string())))
"""The columns :func:`with_meta_columns` appends to a result table."""


def with_meta_columns(results: pa.Table, extra: pa.Table | None) -> pa.Table:
    """``results`` with ``meta`` (JSON text) and ``meta_dropped`` columns from the batch's pass-through fields."""
    rows = meta_rows(extra, results.num_rows)
    meta, dropped = META_FIELDS
    results = results.append_column(meta, pa.array([meta_json(m) for m, _ in rows], meta.type))
    return results.append_column(dropped, pa.array([names or None for _, names in rows], dropped.type))


