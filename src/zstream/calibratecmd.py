"""``zstream calibrate``: choose the source and blend thresholds on labelled data, write thresholds.toml."""

from __future__ import annotations

import argparse
from pathlib import Path

from zstream.evaluate.calibrate import calibrate, write_thresholds
from zstream.evaluate.score import read_truth
from zstream.io import read_results


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="choose the Δχ² source threshold and the blend threshold on labelled results",
        description=(
            "Source threshold on log10 Δχ²: maximum F1 of true vs false sources. Blend threshold on "
            "blend_score: ROC point closest to (FPR 0, TPR 1), as in seed 002 Sect. 4.4. Writes a TOML "
            "[thresholds] table that `zstream scan --thresholds` and the service read. Calibrate on a "
            "tuning set, never on the set you report."
        ),
    )
    parser.add_argument("--results", type=Path, required=True, help="results of scanning the labelled set")
    parser.add_argument("--truth", type=Path, required=True, help="truth.parquet of the labelled set")
    parser.add_argument("--out", type=Path, required=True, help="TOML file to write, e.g. thresholds.toml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Calibrate, write the TOML, print the chosen values; returns the exit code."""
    calibration = calibrate(read_results(args.results), read_truth(args.truth))
    write_thresholds(args.out, calibration, provenance=f"Calibrated on {args.results} against {args.truth}.")
    source, blend = calibration["source"], calibration["blend"]
    print(f"source_log10_delta_chi2 = {calibration['source_log10_delta_chi2']:.4f}  "
          f"(F1 {source['f1']:.4f}, completeness {source['completeness']:.4f}, purity {source['purity']:.4f})")
    print(f"blend_delta_chi2 = {calibration['blend_delta_chi2']:.5f}  (TPR {blend['tpr']:.4f}, FPR {blend['fpr']:.4f})")
    print(f"wrote {args.out}")
    return 0
