"""``zstream bench accuracy``: the acceptance run on simulated data, against the paper's figures.

Train a basis on one simulated set, calibrate the thresholds on a second (tuning)
set, then score a third set whose seed nothing was tuned on. The baseline is
seed 002's published MUSE figures; each line prints ours / paper. Every step
writes its output into ``--out`` and ``--reuse`` skips steps already done, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from zstream.evaluate import headline, score, write_report
from zstream.evaluate.calibrate import calibrate, write_thresholds
from zstream.evaluate.report import PAPER_FIGURES
from zstream.grid import LogGrid
from zstream.io import load_basis, read_results, save_basis, write_results
from zstream.sim import simulate

AIMS = {"good_fraction": 0.95, "completeness": 0.97, "purity": 0.97, "blend_auc": 0.90}
"""Project targets for the acceptance run."""

SCAN_CHUNK = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench accuracy``."""
    parser = subparsers.add_parser(
        "accuracy",
        help="acceptance run: train, calibrate and score on separate simulated sets; compare with seed 002",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train-seed", type=int, default=1001, help="seed of the training set (default 1001)")
    parser.add_argument("--tune-seed", type=int, default=4242, help="seed of the calibration set (default 4242)")
    parser.add_argument("--test-seed", type=int, default=777777, help="seed of the scored set (default 777777)")
    parser.add_argument("--n", type=int, default=2000, help="spectra in the training and test sets (default 2000)")
    parser.add_argument("--n-tune", type=int, default=1000, help="spectra in the calibration set (default 1000)")
    parser.add_argument("--k", type=int, default=10, help="number of templates (default 10, seed 002)")
    parser.add_argument("--max-iter", type=int, default=150,
                        help="joint Nearly-NMF iterations of the training (default 150)")
    parser.add_argument("--sequential-iter", type=int, default=20,
                        help="iterations per sequential template stage (default 20)")
    parser.add_argument("--min-coverage", type=int, default=50,
                        help="rest-frame pixels seen by fewer training spectra are left out of the basis (default 50)")
    parser.add_argument("--grid-step", type=float, default=LogGrid().step,
                        help="log10 λ step of the basis grid (default: seed 002's; 2× is still finer than a MUSE pixel)")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when present)")
    parser.add_argument("--out", type=Path, default=Path("accuracy-run"), help="work directory (default accuracy-run)")
    parser.add_argument("--reuse", action="store_true", help="skip steps whose output already exists in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the acceptance pipeline and print the comparison table; returns the exit code."""
    # imported here: zstream.redshift loads torch
    from zstream.evaluate.gallery import build_gallery
    from zstream.redshift import ScanConfig, Scanner, train_basis

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, path: Path, action) -> None:
        if args.reuse and path.exists():
            print(f"[{name}] reusing {path}")
            return
        start = time.perf_counter()
        action()
        timings[name] = time.perf_counter() - start
        print(f"[{name}] {timings[name]:.0f} s")

    basis_path = out / "basis.parquet"
    def train() -> None:
        batch, _ = simulate(args.n, args.train_seed, progress=True)
        # float64, as the recorded acceptance run was made
        basis = train_basis(batch, args.k, LogGrid(step=args.grid_step), max_iter=args.max_iter,
                            sequential_iter=args.sequential_iter, device=args.device, dtype="float64",
                            min_coverage=args.min_coverage, version=f"accuracy-k{args.k}-seed{args.train_seed}")
        basis.meta["train_seed"] = args.train_seed
        save_basis(basis, basis_path)

    step("train", basis_path, train)
    basis = load_basis(basis_path)

    def scan_set(seed: int, n: int, prefix: str, config: ScanConfig) -> None:
        batch, truth = simulate(n, seed, progress=True)
        scanner = Scanner(basis, config, device=args.device)
        tables = [scanner.scan(batch.take(range(start, min(start + SCAN_CHUNK, n))))
                  for start in tqdm(range(0, n, SCAN_CHUNK), desc=f"scan {prefix}", unit="chunk")]
        write_results(out / f"{prefix}_results.parquet", pa.concat_tables(tables))
        pq.write_table(truth, out / f"{prefix}_truth.parquet")

    step("scan tuning set", out / "tune_results.parquet",
         lambda: scan_set(args.tune_seed, args.n_tune, "tune", ScanConfig()))
    thresholds_path = out / "thresholds.toml"

    def calibrate_on_tuning_set() -> None:
        tuned = calibrate(read_results(out / "tune_results.parquet"), pq.read_table(out / "tune_truth.parquet"))
        write_thresholds(thresholds_path, tuned, provenance=f"Tuning set: seed {args.tune_seed}, {args.n_tune} spectra.")

    step("calibrate", thresholds_path, calibrate_on_tuning_set)
    config = ScanConfig.from_toml(thresholds_path)
    step("scan test set", out / "test_results.parquet", lambda: scan_set(args.test_seed, args.n, "test", config))

    results, truth = read_results(out / "test_results.parquet"), pq.read_table(out / "test_truth.parquet")
    calibrated = score(results, truth, source_threshold=config.source_log10_delta_chi2,
                       blend_threshold=config.blend_delta_chi2)
    paper_cuts = score(results, truth, source_threshold=-2.0, blend_threshold=0.011)
    test_batch, _ = simulate(args.n, args.test_seed)
    gallery = build_gallery(calibrated["worst"], test_batch, basis=basis)
    write_report(calibrated, out / "report", results=results, truth=truth, gallery=gallery)
    summary = {"args": {k: str(v) for k, v in vars(args).items() if k != "func"}, "timings_s": timings,
               "thresholds": {"source_log10_delta_chi2": config.source_log10_delta_chi2,
                              "blend_delta_chi2": config.blend_delta_chi2},
               "calibrated": headline(calibrated), "paper_thresholds": headline(paper_cuts)}
    (out / "accuracy.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    _print_table(summary)
    return 0


def _print_table(summary: dict) -> None:
    ours, fixed = summary["calibrated"], summary["paper_thresholds"]
    print(f"{'figure':18s} {'calibrated':>10s} {'paper cuts':>10s} {'seed 002':>9s} {'aim':>6s} {'ours/paper':>10s}")
    for name in ("good_fraction", "mae", "catastrophic_rate", "completeness", "purity", "blend_auc", "blend_tpr",
                 "blend_fpr"):
        paper = PAPER_FIGURES.get(name)
        ratio = f"{ours[name] / paper:10.3f}" if paper and ours[name] is not None else f"{'':10s}"
        print(f"{name:18s} {_cell(ours[name]):>10s} {_cell(fixed[name]):>10s} {_cell(paper):>9s} "
              f"{_cell(AIMS.get(name)):>6s} {ratio}")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
