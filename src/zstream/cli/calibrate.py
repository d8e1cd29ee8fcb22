"""``zstream calibrate``: fit the reliability model (p_source, p_z_ok, p_blend) on labelled results."""

from __future__ import annotations

import argparse
from pathlib import Path

from zstream.errors import UserError
from zstream.evaluate.scoring import read_truth
from zstream.io import read_results

TOML_SUFFIX = ".toml"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit calibrated p_source, p_z_ok and p_blend on labelled results; writes calibration.json",
        description=(
            "Fit the reliability model on a labelled tuning set (results of zstream scan + truth of zstream "
            "simulate): calibrated probabilities p_source (a real source), p_z_ok (a real source with the right "
            "redshift) and p_blend (a blend, among real sources), each a logistic regression, quadratic in "
            "transformed features of the result (Δχ², robustness, candidate gap, χ²/dof, z_err/(1+z), spike "
            "score, blend score; plus warning bits and spectype). Writes readable JSON that the scanner applies "
            "with numpy only. "
            "Decision thresholds: p_source at 0.5 (or --min-purity), p_blend at the ROC point closest "
            "to (0, 1). An --out ending in .toml writes the older [thresholds] table (log10 Δχ² and blend "
            "Δχ² cuts) instead. Calibrate on a tuning set, never on the set you report."
        ),
    )
    parser.add_argument("--results", type=Path, required=True, help="results of scanning the labelled set")
    parser.add_argument("--truth", type=Path, required=True, help="truth.parquet of the labelled set")
    parser.add_argument("--out", type=Path, required=True,
                        help="calibration.json to write (or a .toml for the [thresholds] table)")
    parser.add_argument("--min-purity", type=float,
                        help="p_source threshold: the most complete cut with at least this tuning purity "
                             "(default: 0.5, more likely than not)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Calibrate, write the file, print what was chosen; returns the exit code."""
    if args.min_purity is not None and not 0 < args.min_purity <= 1:
        raise UserError(f"--min-purity must be in (0, 1], got {args.min_purity}")
    if args.folds < 2:
        raise UserError(f"--folds must be at least 2, got {args.folds}")
    results, truth = read_results(args.results), read_truth(args.truth)
    # imported here: fitting loads scikit-learn and zstream.redshift (torch), which other commands do not need
    from zstream.evaluate.calibrate import calibrate, fit_reliability, write_thresholds

    if args.out.suffix.lower() == TOML_SUFFIX:
        calibration = calibrate(results, truth)
        write_thresholds(args.out, calibration, provenance=f"Calibrated on {args.results} against {args.truth}.")
        source, blend = calibration["source"], calibration["blend"]
        print(f"source_log10_delta_chi2 = {calibration['source_log10_delta_chi2']:.4f}  (F1 {source['f1']:.4f}, "
              f"completeness {source['completeness']:.4f}, purity {source['purity']:.4f})")
        print(f"blend_delta_chi2 = {calibration['blend_delta_chi2']:.5f}  (TPR {blend['tpr']:.4f}, "
              f"FPR {blend['fpr']:.4f})")
    else:
        model = fit_reliability(results, truth, folds=args.folds, seed=args.seed, min_purity=args.min_purity,
                                provenance={"results": str(args.results), "truth": str(args.truth)})
        model.save(args.out)
        print(f"{len(model.design_names)} features; skipped: "
              f"{', '.join(model.provenance['skipped_features']) or 'none'}")
        for target in model.targets.values():
            metrics = target.metrics
            point = ", ".join(f"{key} {value:.4f}" for key, value in metrics["at_threshold"].items())
            print(f"{target.name:8s} threshold {target.threshold:.4f} ({point}); out-of-fold Brier "
                  f"{metrics['brier']:.4f} vs {metrics['brier_baseline']:.4f} constant, AUC {metrics['auc']:.4f}, "
                  f"ECE {metrics['ece']:.4f}")
    print(f"wrote {args.out}")
    return 0
