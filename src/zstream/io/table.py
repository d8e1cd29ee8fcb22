"""Spectrum records ⇄ Arrow tables (the in-memory, Parquet and IPC form).

A table may omit the ``wavelength`` column when one grid is shared by every row:
the grid then lives in the schema metadata under ``SHARED_WAVELENGTH_KEY``
(JSON list, Å) or is passed in by the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from zstream.errors import UserError
from zstream.io.limits import check_arrow_bounds
from zstream.io.reasons import Reason, RecordError, Reject
from zstream.io.records import SpectrumBatch
from zstream.io.schema import SHARED_WAVELENGTH_KEY, SPECTRUM_SCHEMA
from zstream.io.validate import BatchCollector

RECORD_COLUMNS = frozenset(SPECTRUM_SCHEMA.names)


def spectra_to_table(batch: SpectrumBatch, *, shared_wavelength: bool = False) -> pa.Table:
    """Build an Arrow table (``SPECTRUM_SCHEMA`` columns + pass-through columns) from a batch.

    Parameters
    ----------
    batch : SpectrumBatch
        ``n`` spectra; ``batch.extra`` (n rows) is appended untouched.
    shared_wavelength : bool
        Store the (identical) wavelength grid once in the schema metadata instead
        of a ``wavelength`` column.

    Returns
    -------
    pyarrow.Table, n rows

    Raises
    ------
    UserError
        ``shared_wavelength`` is requested but the spectra do not share one grid.
    """
    columns: dict[str, pa.Array] = {"spectrum_id": pa.array(batch.spectrum_id, pa.string())}
    metadata = None
    if shared_wavelength:
        grid = _common_grid(batch.wavelength)
        metadata = {SHARED_WAVELENGTH_KEY: orjson.dumps(grid, option=orjson.OPT_SERIALIZE_NUMPY)}
    else:
        columns["wavelength"] = _list_array(batch.wavelength, pa.float64())
    columns["flux"] = _list_array(batch.flux, pa.float32())
    columns["ivar"] = _list_array(batch.ivar, pa.float64())
    if batch.z is not None:
        columns["z"] = pa.array(np.asarray(batch.z, dtype=np.float64), pa.float64(), from_pandas=True)
    if batch.extra is not None:
        for name in batch.extra.column_names:
            columns[name] = batch.extra.column(name)
    fields = [SPECTRUM_SCHEMA.field(name) if name in RECORD_COLUMNS else pa.field(name, array.type) for name, array in columns.items()]
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields, metadata=metadata))


def table_to_spectra(
    table: pa.Table | pa.RecordBatch, wavelength: np.ndarray | None = None
) -> tuple[SpectrumBatch, list[Reject]]:
    """Validate the rows of a spectrum table; return accepted spectra and per-row rejects.

    Parameters
    ----------
    table : pyarrow.Table or RecordBatch
        Spectrum rows; columns outside ``SPECTRUM_SCHEMA`` pass through into ``extra``.
    wavelength : ndarray, shape (n_pixels,), optional
        Shared grid for rows without their own wavelength; defaults to the grid in
        the schema metadata, if any.

    Returns
    -------
    batch : SpectrumBatch
    rejects : list of Reject

    Raises
    ------
    RecordError
        ``missing_field`` or ``wrong_type`` when a whole column is absent, repeated or mistyped;
        ``too_deep`` / ``field_too_large`` beyond the bounds of :func:`~zstream.io.limits.check_arrow_bounds`.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    check_arrow_bounds(table.schema)
    if wavelength is None:
        wavelength = shared_wavelength_of(table.schema)
    _require_columns(table, wavelength is not None)
    ids = _binary_ids(table.column("spectrum_id"))
    n_rows = table.num_rows
    wavelengths = _list_rows(table, "wavelength", _is_number, np.float64, n_rows)
    fluxes = _list_rows(table, "flux", _is_number, np.float32, n_rows)
    ivars = _list_rows(table, "ivar", _is_number, np.float64, n_rows)
    masks = _list_rows(table, "mask", pa.types.is_boolean, bool, n_rows)
    redshifts = _scalar_rows(table, "z", _is_number, n_rows)
    versions = _scalar_rows(table, "schema_version", pa.types.is_string, n_rows)
    collector = BatchCollector()
    for row in range(n_rows):
        collector.add(
            ids[row],
            wavelength if wavelengths[row] is None and wavelength is not None else wavelengths[row],
            fluxes[row],
            ivars[row],
            mask=masks[row],
            z=redshifts[row],
            schema_version=versions[row],
        )
    extra_names = [name for name in table.column_names if name not in RECORD_COLUMNS]
    extra = table.select(extra_names).take(pa.array(collector.kept, pa.int64())) if extra_names else None
    return collector.finish(extra)


def shared_wavelength_of(schema: pa.Schema) -> np.ndarray | None:
    """The shared wavelength grid stored in ``schema`` metadata, or None.

    Raises
    ------
    RecordError
        ``wrong_type`` when the metadata is not a JSON list of numbers.
    """
    raw = (schema.metadata or {}).get(SHARED_WAVELENGTH_KEY)
    if raw is None:
        return None
    try:
        grid = np.asarray(orjson.loads(raw), dtype=np.float64)
    except (TypeError, ValueError):
        grid = None
    if grid is None or grid.ndim != 1:
        raise RecordError(Reason.WRONG_TYPE, f"schema metadata {SHARED_WAVELENGTH_KEY.decode()} is not a JSON list of wavelengths")
    return grid


def _common_grid(wavelengths: list[np.ndarray]) -> np.ndarray:
    first = np.asarray(wavelengths[0], dtype=np.float64) if wavelengths else np.empty(0)
    n_differ = sum(not np.array_equal(first, w) for w in wavelengths)
    if n_differ:
        raise UserError(
            f"shared_wavelength requested but {n_differ} of {len(wavelengths)} spectra differ from the first "
            "spectrum's grid; write a per-row wavelength column instead"
        )
    return first


def _list_array(rows: list[np.ndarray], value_type: pa.DataType) -> pa.ListArray:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int32, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)
    values = np.concatenate(rows) if rows else np.empty(0)
    return pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(values.astype(value_type.to_pandas_dtype(), copy=False), value_type)
    )


def _is_number(data_type: pa.DataType) -> bool:
    return pa.types.is_floating(data_type) or pa.types.is_integer(data_type)


def _require_columns(table: pa.Table, has_shared_wavelength: bool) -> None:
    repeated = sorted(name for name, count in Counter(table.column_names).items() if count > 1)
    if repeated:
        raise RecordError(Reason.WRONG_TYPE, f"column(s) {', '.join(repeated)} appear more than once")
    required = ["spectrum_id", "flux", "ivar"] + ([] if has_shared_wavelength else ["wavelength"])
    missing = [name for name in required if name not in table.column_names]
    if missing:
        hint = " (or give a shared wavelength grid)" if "wavelength" in missing else ""
        raise RecordError(Reason.MISSING_FIELD, f"column(s) {', '.join(missing)} missing{hint}")


def _binary_ids(column: pa.ChunkedArray) -> list[bytes | None]:
    """Ids as raw bytes, so invalid UTF-8 is rejected per row instead of failing the table."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_binary(column.type)):
        raise RecordError(Reason.WRONG_TYPE, f"column spectrum_id has type {column.type}, expected string")
    return column.cast(pa.binary() if not pa.types.is_large_string(column.type) else pa.large_binary()).to_pylist()


def _list_rows(
    table: pa.Table, name: str, value_is_ok: Callable[[pa.DataType], bool], dtype: type, n_rows: int
) -> list[np.ndarray | None]:
    """Split a list column into per-row numpy arrays (None for a null row or an absent column)."""
    if name not in table.column_names:
        return [None] * n_rows
    column = table.column(name)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or not value_is_ok(column.type.value_type):
        raise RecordError(Reason.WRONG_TYPE, f"column {name} has type {column.type}, expected {SPECTRUM_SCHEMA.field(name).type}")
    array = column.combine_chunks()
    values = array.values
    if pa.types.is_boolean(values.type):
        values = pc.fill_null(values, False)
    with np.errstate(over="ignore"):  # flux beyond float32 becomes inf, then a masked pixel
        values = values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    offsets = array.offsets.to_numpy()
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(n_rows)]


def _scalar_rows(table: pa.Table, name: str, value_is_ok: Callable[[pa.DataType], bool], n_rows: int) -> list:
    if name not in table.column_names:
        return [None] * n_rows
    column = table.column(name)
    if not value_is_ok(column.type):
        raise RecordError(Reason.WRONG_TYPE, f"column {name} has type {column.type}, expected {SPECTRUM_SCHEMA.field(name).type}")
    return column.to_pylist()
