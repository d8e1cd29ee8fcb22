"""Result and rejects files: redshift results in ``RESULT_SCHEMA`` and refused records with their reason.

Both are written as Parquet or JSONL by suffix. A rejects file has one row per
refused record: ``spectrum_id`` (null when unreadable), ``reason`` (a
:class:`~zstream.io.reasons.Reason` code) and ``detail``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.io.files import JSONL_SUFFIXES, PARQUET_SUFFIXES
from zstream.io.messages import encode_result_json
from zstream.io.reasons import Reason, Reject
from zstream.io.schema import RESULT_SCHEMA

REJECT_SCHEMA = pa.schema(
    [pa.field("spectrum_id", pa.string()), pa.field("reason", pa.string(), nullable=False), pa.field("detail", pa.string())]
)


LATER_RESULT_COLUMNS = ("spectype", "z_alt", "spectype_alt", "chi2_alt", "spike_score", "edge_score",
                        "p_source", "p_z_ok", "p_blend")
"""Nullable result columns added after the first release (spectral classes, candidates, reliability)."""


def conform_results(table: pa.Table) -> pa.Table:
    """Order and cast the result columns to ``RESULT_SCHEMA``; extra columns follow untouched.

    A missing column of :data:`LATER_RESULT_COLUMNS` (added to the format after its first
    release) is filled with nulls, so result files written by an older zstream stay readable.

    Raises
    ------
    UserError
        Any other result column is missing, or a column cannot be cast to its type.
    """
    for name in LATER_RESULT_COLUMNS:
        if name not in table.column_names:
            field = RESULT_SCHEMA.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    missing = [name for name in RESULT_SCHEMA.names if name not in table.column_names]
    if missing:
        raise UserError(f"result table lacks column(s) {', '.join(missing)}; see RESULT_SCHEMA in zstream.io")
    extra = [name for name in table.column_names if name not in RESULT_SCHEMA.names]
    try:
        known = table.select(RESULT_SCHEMA.names).cast(RESULT_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
        raise UserError(f"result table does not match RESULT_SCHEMA: {error}") from None
    for name in extra:
        known = known.append_column(table.schema.field(name), table.column(name))
    return known


def write_results(path: str | Path, table: pa.Table) -> None:
    """Write a result table as Parquet or JSONL (by suffix) after :func:`conform_results`."""
    _write_table(Path(path), conform_results(table), encode_result_json)


def read_results(path: str | Path) -> pa.Table:
    """Read results written by :func:`write_results` (Parquet file or directory, or JSONL) in ``RESULT_SCHEMA``."""
    return conform_results(_read_table(Path(path), RESULT_SCHEMA))


def write_rejects(path: str | Path, rejects: list[Reject]) -> None:
    """Write refused records (Parquet or JSONL by suffix), one row each: spectrum_id, reason code, detail."""
    table = pa.Table.from_pylist([reject.to_dict() for reject in rejects], schema=REJECT_SCHEMA)
    _write_table(Path(path), table, orjson.dumps)


def read_rejects(path: str | Path) -> list[Reject]:
    """Read a rejects file written by :func:`write_rejects`."""
    rows = _read_table(Path(path), REJECT_SCHEMA).to_pylist()
    return [Reject(row["spectrum_id"], Reason(row["reason"]), row["detail"]) for row in rows]


def _write_table(path: Path, table: pa.Table, encode) -> None:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        pq.write_table(table, path)
    elif suffix in JSONL_SUFFIXES:
        with path.open("wb") as out:
            for row in table.to_pylist():
                out.write(encode(row) + b"\n")
    else:
        raise UserError(f"{path}: cannot write suffix {suffix!r}; use .parquet or .jsonl")


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.suffix.lower() in JSONL_SUFFIXES:
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        return pa.Table.from_pylist(rows, schema=_with_extra_fields(schema, rows))
    try:
        return ds.dataset(path, format="parquet").to_table()
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(f"{path}: cannot read as Parquet ({error}); use .parquet or .jsonl") from None


def _with_extra_fields(schema: pa.Schema, rows: list[dict]) -> pa.Schema:
    """``schema`` plus inferred fields for keys the rows carry beyond it."""
    extra = {key for row in rows for key in row} - set(schema.names)
    if not extra:
        return schema
    inferred = pa.Table.from_pylist([{key: row.get(key) for key in sorted(extra)} for row in rows]).schema
    return pa.schema(list(schema) + list(inferred))
