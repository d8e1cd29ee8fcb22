"""``zstream simulate``: write a labelled MUSE-like spectrum set (spectra file + truth.parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.io import write_spectra
from zstream.sim import SimConfig, simulate

FORMAT_SUFFIXES = {"parquet": (".parquet",), "jsonl": (".jsonl",), "both": (".parquet", ".jsonl")}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate labelled MUSE-like spectra (sources, false detections, blends) with a truth table",
        description=(
            "Write DIR/spectra.parquet (or .jsonl, for replay into Kafka) and DIR/truth.parquet "
            "(spectrum_id, z, source_class, is_source, is_blend, z2, line_snr, cont_snr, flux_ratio). "
            "Sources carry their true z in the spectra file, so it can train `zstream fit`. "
            "The same --n/--seed/settings always give the same files."
        ),
    )
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--format", choices=sorted(FORMAT_SUFFIXES), default="parquet",
                        help="spectra file format (default parquet; jsonl = one JSON record per line)")
    defaults = SimConfig()
    parser.add_argument("--false-fraction", type=float, default=defaults.false_fraction,
                        help=f"fraction of false detections (default {defaults.false_fraction})")
    parser.add_argument("--blend-fraction", type=float, default=defaults.blend_fraction,
                        help=f"fraction of blends of two sources (default {defaults.blend_fraction})")
    parser.add_argument("--wavelength-min", type=float, default=defaults.wavelength_min, help="first pixel, Å")
    parser.add_argument("--wavelength-max", type=float, default=defaults.wavelength_max, help="last pixel, Å")
    parser.add_argument("--pixel-size", type=float, default=defaults.pixel_size, help="pixel size, Å (default 1.25)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate and write the files; returns the exit code."""
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    try:
        config = SimConfig(
            wavelength_min=args.wavelength_min, wavelength_max=args.wavelength_max, pixel_size=args.pixel_size,
            false_fraction=args.false_fraction, blend_fraction=args.blend_fraction,
        )
    except ValueError as error:
        raise UserError(f"{error}; fix the command-line options") from None
    args.out.mkdir(parents=True, exist_ok=True)
    batch, truth = simulate(args.n, args.seed, config, progress=True)
    for suffix in FORMAT_SUFFIXES[args.format]:
        # every spectrum shares the simulator grid: Parquet stores it once, in the file metadata
        write_spectra(args.out / f"spectra{suffix}", batch, shared_wavelength=suffix == ".parquet")
    pq.write_table(truth, args.out / "truth.parquet")
    print(f"wrote {args.n} spectra and truth.parquet to {args.out}", file=sys.stderr)
    return 0
