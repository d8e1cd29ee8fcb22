"""``zstream evaluate``: score scanner results against a truth table and write report.json + report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.parquet as pq

from zstream.evaluate import headline, score, write_report
from zstream.evaluate.scoring import read_truth
from zstream.io import load_basis, read_results, read_spectra


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score results against truth: GF, MAE, completeness/purity, blend ROC; writes an HTML report",
        description=(
            "Compare a results file (zstream scan) with a truth table (zstream simulate) and write "
            "DIR/report.json, DIR/report.html and PNG plots. Decisions use the scanner's is_source / is_blend "
            "unless thresholds are given. With --spectra (and --basis or --curves) the report includes a "
            "gallery of the worst redshifts with their χ²(z) curves and best-fit models."
        ),
    )
    parser.add_argument("--results", type=Path, required=True, help="results file (Parquet or JSONL)")
    parser.add_argument("--truth", type=Path, required=True, help="truth.parquet")
    parser.add_argument("--out", type=Path, required=True, help="report directory (created if missing)")
    parser.add_argument("--thresholds", type=Path, help="TOML with [thresholds] (as written by zstream calibrate)")
    parser.add_argument("--source-threshold", type=float, help="source when log10 Δχ² exceeds this (overrides TOML)")
    parser.add_argument("--blend-threshold", type=float, help="blend when blend_score exceeds this (overrides TOML)")
    parser.add_argument("--spectra", type=Path, help="the scored spectra, to draw the worst cases")
    parser.add_argument("--basis", type=Path, help="basis file: recompute χ²(z) curves and best fits of the worst cases")
    parser.add_argument("--curves", type=Path, help="χ²(z) curves kept by zstream scan (Parquet), used without --basis")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score, write the report, print the headline figures; returns the exit code."""
    results = read_results(args.results)
    truth = read_truth(args.truth)
    source_threshold, blend_threshold = _thresholds(args)
    report = score(results, truth, source_threshold=source_threshold, blend_threshold=blend_threshold)
    written = write_report(report, args.out, results=results, truth=truth, gallery=_gallery(args, report))
    for name, value in headline(report).items():
        print(f"{name:18s} {'–' if value is None else f'{value:.4f}'}")
    print(f"report: {written['html']}")
    return 0


def _thresholds(args: argparse.Namespace) -> tuple[float | None, float | None]:
    source, blend = None, None
    if args.thresholds is not None:
        from zstream.redshift.config import read_thresholds  # imported here: zstream.redshift loads torch

        values = read_thresholds(args.thresholds)
        source, blend = values.get("source_log10_delta_chi2"), values.get("blend_delta_chi2")
    return (
        args.source_threshold if args.source_threshold is not None else source,
        args.blend_threshold if args.blend_threshold is not None else blend,
    )


def _gallery(args: argparse.Namespace, report: dict) -> list:
    if args.spectra is None:
        return []
    from zstream.evaluate.gallery import build_gallery  # imported here: rescanning loads torch

    spectra, _ = read_spectra(args.spectra)
    basis = load_basis(args.basis) if args.basis is not None else None
    curves = pq.read_table(args.curves) if args.curves is not None and basis is None else None
    return build_gallery(report["worst"], spectra, basis=basis, curves=curves)
