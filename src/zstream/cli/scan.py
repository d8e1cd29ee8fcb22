"""``zstream scan``: redshifts for every spectrum of a file (the work is :func:`zstream.redshift.pool.scan_stream`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from zstream.errors import UserError
from zstream.io.basis import load_basis
from zstream.io.files import JSONL_SUFFIXES, PARQUET_SUFFIXES, iter_spectra
from zstream.io.results import write_rejects
from zstream.io.sinks import ResultSink, TableSink


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scan`` sub-command."""
    parser = subparsers.add_parser(
        "scan",
        help="measure redshifts (χ²(z) scan with non-negative template fits), source and blend flags",
        description=(
            "For every spectrum of INPUT and every spectral class of the basis: χ²(z) on the class's trial grid "
            "with non-negative coefficients (sky-residual shapes fitted with free sign when the input has a sky "
            "column), its best minima refined exactly and ranked over all classes, z_err from the χ² curvature, "
            "Δχ² and robustness against the best rival (Bourahma et al. 2026, Eqs. 7-8), and a blend rescan with "
            "the galaxy basis augmented by the best fit. With --calibration, p_source, p_z_ok and p_blend come "
            "from the calibrated model and set is_source and is_blend; otherwise the Δχ² thresholds do. "
            "Refused records go to the rejects file. Results stream out in input order."
        ),
    )
    parser.add_argument("--input", type=Path, required=True, help="spectrum file or directory (.parquet, .arrow, .jsonl, .fits)")
    parser.add_argument("--basis", type=Path, required=True, help="basis file written by `zstream fit` (.parquet)")
    parser.add_argument("--out", type=Path, required=True, help="results file (.parquet or .jsonl)")
    parser.add_argument("--rejects", type=Path, help="refused records (default: <out>.rejects.<suffix>)")
    parser.add_argument("--calibration", type=Path,
                        help="reliability model written by `zstream calibrate` (.json): p_source, p_z_ok, p_blend")
    parser.add_argument("--thresholds", type=Path, help="TOML with [thresholds] source_log10_delta_chi2, blend_delta_chi2")
    parser.add_argument("--source-threshold", type=float, help="is_source when log10 Δχ² exceeds this (default -2)")
    parser.add_argument("--blend-threshold", type=float, help="is_blend when the rescan's Δχ² exceeds this (default 0.011)")
    parser.add_argument("--no-blend", action="store_true", help="skip the blend rescan")
    parser.add_argument("--z-min", type=float, default=0.0, help="lowest trial redshift (default 0)")
    parser.add_argument("--z-max", type=float, default=6.7, help="highest trial redshift (default 6.7)")
    parser.add_argument("--z-step", type=float, default=0.0005, help="trial redshift step (default 0.0005)")
    parser.add_argument("--keep-chi2", nargs="+", metavar="ID", default=[], help="keep the χ²(z) curves of these spectrum ids")
    parser.add_argument("--keep-chi2-all", action="store_true", help="keep every χ²(z) curve (large: ~54 kB per spectrum)")
    parser.add_argument("--chi2-out", type=Path, help="χ²(z) curves file (default: <out>.chi2.parquet)")
    parser.add_argument("--batch-size", type=int, default=64, help="spectra per batch handed to a worker (default 64)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes, one CPU core each (default: all cores)")
    parser.add_argument("--wavelength", type=Path, help="shared wavelength grid (.npy or text, Å) for rows without one")
    parser.add_argument("--device", default="cpu", help="torch device of the workers: cpu, cuda, cuda:1, auto (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream scan``: returns 0 (rejected records are reported, not an error)."""
    from zstream.redshift import CURVE_SCHEMA, ScanConfig  # torch loads only when scanning
    from zstream.redshift.pool import scan_stream
    from zstream.redshift.reliability import ReliabilityModel

    suffix = args.out.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + JSONL_SUFFIXES:
        raise UserError(f"--out {args.out}: use a .parquet or .jsonl file name")
    if args.workers < 1 or args.batch_size < 1:
        raise UserError(f"--workers and --batch-size must be ≥ 1, got {args.workers} and {args.batch_size}")
    settings = {"z_min": args.z_min, "z_max": args.z_max, "z_step": args.z_step, "blend": not args.no_blend,
                "keep_chi2": args.keep_chi2_all, "batch_size": args.batch_size}
    if args.source_threshold is not None:
        settings["source_log10_delta_chi2"] = args.source_threshold
    if args.blend_threshold is not None:
        settings["blend_delta_chi2"] = args.blend_threshold
    if args.calibration:
        settings["reliability"] = ReliabilityModel.load(args.calibration)
    config = ScanConfig.from_toml(args.thresholds, **settings) if args.thresholds else ScanConfig(**settings)
    basis = load_basis(args.basis)
    rejects_path = args.rejects or args.out.with_name(f"{args.out.stem}.rejects{suffix}")
    keep = set(args.keep_chi2)
    curves_path = (args.chi2_out or args.out.with_name(f"{args.out.stem}.chi2.parquet")) if keep or args.keep_chi2_all else None

    started = time.perf_counter()
    with ResultSink(args.out) as results, TableSink(curves_path, CURVE_SCHEMA) as curves, \
            tqdm(unit=" spectra", desc="scan", file=sys.stderr, disable=args.quiet) as progress:
        batches = iter_spectra(args.input, batch_size=args.batch_size, wavelength=args.wavelength)
        tally = scan_stream(batches, basis, config, results, curves, workers=args.workers, device=args.device,
                            keep_chi2=keep, progress=progress.update)
    write_rejects(rejects_path, tally.rejects)
    elapsed = time.perf_counter() - started
    print(
        f"{args.input}: {tally.results} results ({tally.sources} sources, {tally.blends} blends), "
        f"{len(tally.rejects)} rejected → {args.out}, {rejects_path}; {elapsed:.1f} s "
        f"({tally.results / max(elapsed, 1e-9):.1f} spectra/s)",
        file=sys.stderr,
    )
    return 0
