"""Tables appended to a file as they arrive, so a scan of any size writes with flat memory."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.io.files import JSONL_SUFFIXES, spectrum_records
from zstream.io.messages import encode_result_json, encode_spectrum_json
from zstream.io.meta import META_FIELDS
from zstream.io.records import SpectrumBatch
from zstream.io.results import conform_results
from zstream.io.schema import RESULT_SCHEMA
from zstream.io.table import spectra_to_table


class ResultSink:
    """Append result tables to a Parquet or JSONL file (by suffix), conformed to ``RESULT_SCHEMA`` plus the ``meta`` columns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl = None

    def __enter__(self) -> "ResultSink":
        if self.path.suffix.lower() in JSONL_SUFFIXES:
            self._jsonl = self.path.open("wb")
        else:
            self._parquet = pq.ParquetWriter(self.path, pa.schema([*RESULT_SCHEMA, *META_FIELDS]))
        return self

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table``."""
        table = conform_results(table)
        if self._jsonl is not None:
            for row in table.to_pylist():
                self._jsonl.write(encode_result_json(row) + b"\n")
        else:
            self._parquet.write_table(table)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in (self._jsonl, self._parquet):
            if handle is not None:
                handle.close()


class TableSink:
    """Append tables of one schema to a Parquet file; with no path, a sink that keeps nothing."""

    def __init__(self, path: Path | None, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "TableSink":
        if self.path is not None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        return self

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (nothing when it is empty or there is no file)."""
        if self._writer is not None and table.num_rows:
            self._writer.write_table(table)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.close()


class SpectrumSink:
    """Append accepted batches to a Parquet or JSONL file as they arrive (nothing when no path)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl = None

    def __enter__(self) -> "SpectrumSink":
        if self.path is not None and self.path.suffix.lower() in JSONL_SUFFIXES:
            self._jsonl = self.path.open("wb")
        return self

    def write(self, batch: SpectrumBatch) -> None:
        """Append the spectra of ``batch``.

        Raises
        ------
        UserError
            Parquet cannot hold the batch's columns, or they differ from the first batch's.
        """
        if self.path is None or not len(batch):
            return
        if self._jsonl is not None:
            self._jsonl.writelines(encode_spectrum_json(record) + b"\n" for record in spectrum_records(batch))
            return
        table = spectra_to_table(batch)
        try:
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(_conform(table, self._parquet.schema, self.path))
        except pa.ArrowNotImplementedError as error:  # e.g. a pass-through struct without fields
            raise UserError(f"--output {self.path}: Parquet cannot hold these columns ({error}); write .jsonl instead") from None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._jsonl is not None:
            self._jsonl.close()


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """``table`` in the writer's ``schema``: absent columns become null; new or retyped ones are an error."""
    new = set(table.column_names) - set(schema.names)
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema]
    try:
        if new:
            raise pa.ArrowInvalid(f"columns {sorted(new)} appear only after the first batch")
        return pa.Table.from_arrays(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise UserError(f"--output {path}: batches differ in their columns ({error}); write .jsonl instead") from None
