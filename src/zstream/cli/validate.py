"""``zstream validate``: check a spectrum file, count rejects by reason, optionally write the clean spectra.

Doubles as a converter (e.g. a directory of MUSE FITS spectra → one Parquet file)
because the accepted spectra can be written out as they stream past.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from zstream.errors import UserError
from zstream.io.files import JSONL_SUFFIXES, PARQUET_SUFFIXES, iter_spectra
from zstream.io.reasons import Reject
from zstream.io.results import write_rejects
from zstream.io.sinks import SpectrumSink


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
    with SpectrumSink(args.output) as sink, tqdm(unit=" spectra", desc="validate", file=sys.stderr) as progress:
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
