"""Spectrum files: stream validated batches out of Parquet, Arrow IPC, JSONL and FITS; write Parquet/IPC/JSONL.

Every reader yields ``(SpectrumBatch, rejects)`` pairs of at most ``batch_size``
records, so memory stays bounded however large the input. File-level problems
(missing file, unknown format, a whole column missing or mistyped) raise
:class:`~zstream.errors.UserError`; record-level problems become rejects, with
the same bounds and reasons as Kafka messages (an unexpected exception on one
JSONL line, FITS file or table row is that record's ``internal_error``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.io.fits import is_fits_path, read_fits_spectrum
from zstream.io.messages import decode_json_records, encode_spectrum_json
from zstream.io.reasons import RecordError, Reject, internal_error
from zstream.io.records import SpectrumBatch
from zstream.io.table import shared_wavelength_of, spectra_to_table, table_to_spectra
from zstream.io.validate import BatchCollector

PARQUET_SUFFIXES = (".parquet", ".pq")
IPC_SUFFIXES = (".arrow", ".feather", ".ipc")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUPPORTED = "Parquet (.parquet or a directory of them), Arrow IPC (.arrow/.feather), JSONL (.jsonl) or FITS (.fits[.gz] or a directory of them)"

Batches = Iterator[tuple[SpectrumBatch, list[Reject]]]
log = logging.getLogger("zstream.io")


def iter_spectra(path: str | Path, *, batch_size: int = 1024, wavelength: np.ndarray | str | Path | None = None) -> Batches:
    """Stream validated spectra from a file or directory.

    Parameters
    ----------
    path : str or Path
        ``.parquet`` file or directory of Parquet files (a pyarrow dataset),
        ``.arrow``/``.feather`` (IPC file or stream), ``.jsonl``, ``.fits``/``.fit``/``.fits.gz``
        (one spectrum per file) or a directory of FITS files.
    batch_size : int
        Maximum number of records per yielded batch.
    wavelength : ndarray (n_pixels,) or path to .npy/.txt, optional
        Shared wavelength grid (Å) for rows without their own; overrides a grid
        stored in the file metadata.

    Yields
    ------
    batch : SpectrumBatch
        Accepted spectra of one chunk.
    rejects : list of Reject
        Refused records of the same chunk.

    Raises
    ------
    UserError
        Missing path, unsupported format, bad shared grid, or a table-level problem.
    """
    path = Path(path)
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    shared = load_wavelength(wavelength)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    try:
        yield from _reader_for(path)(path, batch_size, shared)
    except RecordError as error:
        raise UserError(f"{path}: {error}") from None
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"{path}: cannot read ({error}); expected {SUPPORTED}") from None


def read_spectra(path: str | Path, **kwargs) -> tuple[SpectrumBatch, list[Reject]]:
    """Read a whole spectrum file into one batch (convenience over :func:`iter_spectra`, same keywords)."""
    batches, rejects = [], []
    for batch, batch_rejects in iter_spectra(path, **kwargs):
        batches.append(batch)
        rejects.extend(batch_rejects)
    return concat_batches(batches), rejects


def write_spectra(path: str | Path, batch: SpectrumBatch, *, shared_wavelength: bool = False) -> None:
    """Write spectra as Parquet, Arrow IPC file or JSONL, chosen by the suffix of ``path``.

    Parameters
    ----------
    path : str or Path
    batch : SpectrumBatch
    shared_wavelength : bool
        Parquet/IPC only: store the common grid once in the file metadata.

    Raises
    ------
    UserError
        Unsupported suffix, or ``shared_wavelength`` with differing grids or JSONL.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        if shared_wavelength:
            raise UserError(f"{path}: JSONL records each carry their wavelength; drop shared_wavelength or write Parquet")
        with path.open("wb") as out:
            for record in spectrum_records(batch):
                out.write(encode_spectrum_json(record) + b"\n")
        return
    table = spectra_to_table(batch, shared_wavelength=shared_wavelength)
    if suffix in PARQUET_SUFFIXES:
        pq.write_table(table, path)
    elif suffix in IPC_SUFFIXES:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    else:
        raise UserError(f"{path}: cannot write spectra with suffix {suffix!r}; use .parquet, .arrow or .jsonl")


def spectrum_records(batch: SpectrumBatch) -> Iterator[dict]:
    """One plain dict per spectrum (the JSON record form), pass-through fields included."""
    extra_rows = batch.extra.to_pylist() if batch.extra is not None else [{}] * len(batch)
    for i, spectrum_id in enumerate(batch.spectrum_id):
        record = {"spectrum_id": spectrum_id, "wavelength": batch.wavelength[i], "flux": batch.flux[i], "ivar": batch.ivar[i]}
        if batch.z is not None:
            record["z"] = None if np.isnan(batch.z[i]) else float(batch.z[i])
        yield record | extra_rows[i]


def concat_batches(batches: list[SpectrumBatch]) -> SpectrumBatch:
    """Join batches in order into one.

    Missing redshifts become NaN, missing pass-through columns null and an unknown
    ``n_nonfinite`` zero, so rows stay aligned whatever each batch carries.
    """

    def joined(attribute: str) -> list:
        return [item for batch in batches for item in getattr(batch, attribute)]

    redshifts = [b.z if b.z is not None else np.full(len(b), np.nan) for b in batches]
    counts = [b.n_nonfinite if b.n_nonfinite is not None else np.zeros(len(b), np.int64) for b in batches]
    return SpectrumBatch(
        spectrum_id=joined("spectrum_id"),
        wavelength=joined("wavelength"),
        flux=joined("flux"),
        ivar=joined("ivar"),
        z=np.concatenate(redshifts) if any(b.z is not None for b in batches) else None,
        extra=_concat_extras(batches),
        n_nonfinite=np.concatenate(counts).astype(np.int64) if counts else np.empty(0, np.int64),
    )


def _concat_extras(batches: list[SpectrumBatch]) -> pa.Table | None:
    present = [b.extra for b in batches if b.extra is not None]
    if not present:
        return None
    try:
        schema = pa.unify_schemas([extra.schema for extra in present], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a column of unrelated types in different batches
        schema = _majority_schema(present)
        tables = [_conformed_extra(b, schema) for b in batches]
    else:
        tables = [
            b.extra if b.extra is not None else pa.table({f.name: pa.nulls(len(b), f.type) for f in schema})
            for b in batches
        ]
    return pa.concat_tables(tables, promote_options="permissive")


def _majority_schema(extras: list[pa.Table]) -> pa.Schema:
    """Per pass-through column, the type most rows carry (the first seen on a tie)."""
    rows: dict[str, Counter] = {}
    for extra in extras:
        for field in extra.schema:
            rows.setdefault(field.name, Counter())[field.type] += extra.num_rows
    for name, types in rows.items():
        if len(types) > 1:
            log.warning("pass-through column %r has unrelated types %s in one batch; kept as the most common, "
                        "null where another cannot be cast", name, sorted(map(str, types)))
    return pa.schema([(name, types.most_common(1)[0][0]) for name, types in rows.items()])


def _conformed_extra(batch: SpectrumBatch, schema: pa.Schema) -> pa.Table:
    """``batch.extra`` in ``schema``: a column that is absent, or cannot be cast to its schema type, is null."""
    columns = []
    for field in schema:
        column = None
        if batch.extra is not None and field.name in batch.extra.column_names:
            try:
                column = batch.extra.column(field.name).cast(field.type)
            except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = None
        columns.append(pa.nulls(len(batch), field.type) if column is None else column)
    return pa.Table.from_arrays(columns, schema=schema)


def load_wavelength(wavelength: np.ndarray | str | Path | None) -> np.ndarray | None:
    """Return a shared wavelength grid as float64 Å, loading it from ``.npy`` or text if given a path.

    Raises
    ------
    UserError
        Unreadable file, or a grid that is empty, not 1-D, non-finite or not strictly increasing.
    """
    if wavelength is None:
        return None
    if isinstance(wavelength, (str, Path)):
        source = Path(wavelength)
        try:
            grid = np.load(source) if source.suffix == ".npy" else np.loadtxt(source, ndmin=1)
        except (OSError, ValueError) as error:
            raise UserError(f"wavelength file {source}: cannot read ({error}); give a .npy or one-number-per-line text file") from None
    else:
        source = "shared wavelength grid"
        grid = wavelength
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
        raise UserError(f"{source}: must be a non-empty 1-D, finite, strictly increasing array of Å (got shape {grid.shape})")
    return grid


def _reader_for(path: Path):
    name = path.name.lower()
    if path.is_dir():
        if any(is_fits_path(p) for p in path.iterdir()):
            return _iter_fits
        return _iter_parquet_dataset
    if name.endswith(PARQUET_SUFFIXES):
        return _iter_parquet_file
    if name.endswith(IPC_SUFFIXES):
        return _iter_ipc
    if name.endswith(JSONL_SUFFIXES):
        return _iter_jsonl
    if is_fits_path(path):
        return _iter_fits
    raise UserError(f"{path}: unsupported input; expected {SUPPORTED}")


def _convert(batches: Iterable[pa.RecordBatch], schema: pa.Schema, shared: np.ndarray | None) -> Batches:
    grid = shared if shared is not None else shared_wavelength_of(schema)
    for record_batch in batches:
        record_batch.validate(full=True)  # ArrowInvalid (→ UserError) for a corrupt file, not an out-of-bounds read
        yield table_to_spectra(record_batch, wavelength=grid)


def _iter_parquet_file(path: Path, batch_size: int, shared: np.ndarray | None) -> Batches:
    parquet = pq.ParquetFile(path)
    yield from _convert(parquet.iter_batches(batch_size=batch_size), parquet.schema_arrow, shared)


def _iter_parquet_dataset(path: Path, batch_size: int, shared: np.ndarray | None) -> Batches:
    dataset = ds.dataset(path, format="parquet")
    yield from _convert(dataset.to_batches(batch_size=batch_size), dataset.schema, shared)


def _iter_ipc(path: Path, batch_size: int, shared: np.ndarray | None) -> Batches:
    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_stream(source)
            batches = iter(reader)
        yield from _convert(_rebatch(batches, batch_size), reader.schema, shared)


def _rebatch(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    for record_batch in batches:
        for start in range(0, record_batch.num_rows, batch_size):
            yield record_batch.slice(start, batch_size)


def _refuse_shared_grid(path: Path, shared: np.ndarray | None) -> None:
    if shared is not None:
        raise UserError(f"{path}: a shared wavelength grid applies to Parquet/Arrow tables only; JSONL and FITS records carry their own")


def _iter_jsonl(path: Path, batch_size: int, shared: np.ndarray | None) -> Batches:
    _refuse_shared_grid(path, shared)
    with path.open("rb") as lines:
        numbered = ((number, line) for number, line in enumerate(lines, start=1) if line.strip())
        while chunk := list(islice(numbered, batch_size)):
            yield decode_json_records([line for _, line in chunk], labels=[f"{path.name} line {n}" for n, _ in chunk])


def _iter_fits(path: Path, batch_size: int, shared: np.ndarray | None) -> Batches:
    _refuse_shared_grid(path, shared)
    files = sorted(p for p in path.iterdir() if is_fits_path(p)) if path.is_dir() else [path]
    for start in range(0, len(files), batch_size):
        collector = BatchCollector()
        for file in files[start : start + batch_size]:
            try:
                record = read_fits_spectrum(file)
            except RecordError as error:
                collector.skip(None, error)
                continue
            except Exception as error:  # noqa: BLE001 (a reader bug or an astropy surprise refuses this file only)
                collector.skip(None, internal_error(error, f"reading {file}"))
                continue
            collector.add(record["spectrum_id"], record["wavelength"], record["flux"], record["ivar"])
        yield collector.finish()
