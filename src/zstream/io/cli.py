"""``zstream validate``: check a spectrum file, count rejects by reason, optionally write the clean spectra.

Doubles as a converter (e.g. a directory of MUSE FITS spectra → one Parquet file)
because the accepted spectra can be written out as they stream past.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from zstream.errors import UserError
from zstream.io.files import JSONL_SUFFIXES, PARQUET_SUFFIXES, iter_spectra, spectrum_records
from zstream.io.messages import encode_spectrum_json
from zstream.io.reasons import Reject
from zstream.io.records import SpectrumBatch
from zstream.io.results import write_rejects
from zstream.io.table import spectra_to_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="validate a spectrum file (Parquet, Arrow, JSONL, FITS); write rejects and clean spectra",
        description=(
            "Read INPUT in batches, apply the same checks as the service, print counts per reason code "
            "(see docs/formats.md) and the number of NaN/inf pixels masked. Exit status 0 when every record "
            "was accepted, 1 when some were rejected, 2 on unusable input."
        ),
    )
    parser.add_argument("input", type=Path, help="spectrum file or directory (.parquet, .arrow, .jsonl, .fits[.gz])")
    parser.add_argument("--wavelength", type=Path, help="shared wavelength grid (.npy or text, Å) for rows without one")
    parser.add_argument("--rejects", type=Path, help="write refused records here (.parquet or .jsonl)")
    parser.add_argument("--output", type=Path, help="write accepted spectra here (.parquet or .jsonl)")
    parser.add_argument("--batch-size", type=int, default=1024, help="records per batch (default 1024)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.input``; returns 0 if all records were accepted, else 1."""
    if args.output is not None and args.output.suffix.lower() not in PARQUET_SUFFIXES + JSONL_SUFFIXES:
        raise UserError(f"--output {args.output}: use a .parquet or .jsonl file name")
    rejects: list[Reject] = []
    n_accepted = n_masked = 0
    with _SpectrumSink(args.output) as sink, tqdm(unit=" spectra", desc="validate", file=sys.stderr) as progress:
        for batch, batch_rejects in iter_spectra(args.input, batch_size=args.batch_size, wavelength=args.wavelength):
            sink.write(batch)
            rejects.extend(batch_rejects)
            n_accepted += len(batch)
            n_masked += int(batch.n_nonfinite.sum())
            progress.update(len(batch) + len(batch_rejects))
    if args.rejects is not None:
        write_rejects(args.rejects, rejects)
    by_reason = Counter(reject.reason.value for reject in rejects)
    summary = ", ".join(f"{reason}={count}" for reason, count in by_reason.most_common())
    print(f"{args.input}: {n_accepted} accepted, {len(rejects)} rejected{f' ({summary})' if summary else ''}, "
          f"{n_masked} NaN/inf pixels masked")
    return 1 if rejects else 0


class _SpectrumSink:
    """Append accepted batches to a Parquet or JSONL file as they arrive (nothing when no path)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl = None

    def __enter__(self) -> "_SpectrumSink":
        if self.path is not None and self.path.suffix.lower() in JSONL_SUFFIXES:
            self._jsonl = self.path.open("wb")
        return self

    def write(self, batch: SpectrumBatch) -> None:
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

    def __exit__(self, *exc_info) -> None:
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
