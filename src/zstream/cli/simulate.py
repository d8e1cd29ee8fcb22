"""``zstream simulate``: write a labelled MUSE-like spectrum set (spectra file + truth.parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.io import write_spectra
from zstream.sim import PRESETS, SimConfig, simulate

FORMAT_SUFFIXES = {"parquet": (".parquet",), "jsonl": (".jsonl",), "both": (".parquet", ".jsonl")}
_OVERRIDES = ("false_fraction", "blend_fraction", "wavelength_min", "wavelength_max", "pixel_size")
"""SimConfig fields with a command-line option that, when given, overrides the population's value."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate labelled MUSE-like spectra (sources, false detections, blends) with a truth table",
        description=(
            "Write DIR/spectra.parquet (or .jsonl, for replay into Kafka) and DIR/truth.parquet "
            "(spectrum_id, z, source_class, spectype, is_source, is_blend, z2, line_snr, cont_snr, flux_ratio). "
            "Sources carry their true z and spectype (GALAXY, QSO or STAR) in the spectra file, so it can "
            "train `zstream fit`; each spectrum also carries the subtracted sky spectrum (column sky). "
            "The same --n/--seed/--population/settings always give the same files."
        ),
    )
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--format", choices=sorted(FORMAT_SUFFIXES), default="parquet",
                        help="spectra file format (default parquet; jsonl = one JSON record per line)")
    parser.add_argument(
        "--population", choices=PRESETS, default=PRESETS[0],
        help=f"simulated population (default {PRESETS[0]}: a deep MUSE field; wide: more stars and quasars, "
             "fewer Lyα emitters, brighter sources with a wider S/N spread, 2.5x the sky residuals and other "
             "line-ratio ranges, for generalisation tests). The options below override its settings",
    )
    defaults = SimConfig()
    parser.add_argument("--false-fraction", type=float,
                        help=f"fraction of false detections (default {defaults.false_fraction})")
    parser.add_argument("--blend-fraction", type=float,
                        help=f"fraction of blends of two sources (default {defaults.blend_fraction})")
    parser.add_argument("--wavelength-min", type=float, help=f"first pixel, Å (default {defaults.wavelength_min})")
    parser.add_argument("--wavelength-max", type=float, help=f"last pixel, Å (default {defaults.wavelength_max})")
    parser.add_argument("--pixel-size", type=float, help=f"pixel size, Å (default {defaults.pixel_size})")
    parser.add_argument("--no-sky", dest="write_sky", action="store_false",
                        help="leave out the per-spectrum sky column (smaller files)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate and write the files; returns the exit code."""
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    overrides = {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name) is not None}
    try:
        config = SimConfig.preset(args.population, write_sky=args.write_sky, **overrides)
    except ValueError as error:
        raise UserError(f"{error}; fix the command-line options") from None
    args.out.mkdir(parents=True, exist_ok=True)
    batch, truth = simulate(args.n, args.seed, config, progress=True)
    for suffix in FORMAT_SUFFIXES[args.format]:
        # every spectrum shares the simulator grid: Parquet stores it once, in the file metadata
        write_spectra(args.out / f"spectra{suffix}", batch, shared_wavelength=suffix == ".parquet")
    pq.write_table(truth, args.out / "truth.parquet")
    print(f"wrote {args.n} {args.population} spectra and truth.parquet to {args.out}", file=sys.stderr)
    return 0
