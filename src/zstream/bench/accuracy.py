"""``zstream bench accuracy``: the acceptance run on simulated data, on two populations, against the paper.

The README path with its defaults, on sets made with separate seeds: train a
basis (``zstream fit``) on one simulated MUSE-deep set, fit the reliability model
(``zstream calibrate``) on a second, then scan (``zstream scan --calibration``)
two test sets nothing was tuned on: a third MUSE-deep set and a set of the
differently configured ``wide`` population (other class mix, S/N distribution,
sky residuals and line ratios). The baseline is the published MUSE figures of
Bourahma et al. 2026; each line prints ours / paper. Every step writes its
output into ``--out`` and ``--reuse`` skips steps already done, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from zstream.evaluate import headline, score, write_report
from zstream.evaluate.report import PAPER_FIGURES
from zstream.io import load_basis, read_results, save_basis, write_results
from zstream.sim import simulate
from zstream.sim.config import SimConfig

AIMS = {"good_fraction": 0.95, "completeness": 0.97, "purity": 0.97, "blend_auc": 0.90, "class_accuracy": 0.97}
"""Project targets for the acceptance run (and GF ≥ 0.90 in every class)."""

AIM_PER_CLASS = 0.90

SCAN_CHUNK = 64

FIGURES = ("good_fraction", "mae", "catastrophic_rate", "completeness", "purity", "blend_auc", "blend_tpr",
           "blend_fpr", "class_accuracy")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench accuracy``."""
    parser = subparsers.add_parser(
        "accuracy",
        help="acceptance run: train, calibrate and score two populations on separate simulated sets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train-seed", type=int, default=1001, help="seed of the training set (default 1001)")
    parser.add_argument("--tune-seed", type=int, default=4242, help="seed of the calibration set (default 4242)")
    add_test_seed_arguments(parser)
    parser.add_argument("--n", type=int, default=2000, help="spectra in the training set (default 2000)")
    parser.add_argument("--n-tune", type=int, default=1000, help="spectra in the calibration set (default 1000)")
    parser.add_argument("--n-test", type=int, default=2000, help="spectra in each test set (default 2000)")
    parser.add_argument("--k", default=None, help="templates per class as for zstream fit (default: fit's defaults)")
    parser.add_argument("--max-iter", type=int, default=500,
                        help="joint Nearly-NMF iterations of the training (default 500, as zstream fit)")
    parser.add_argument("--sequential-iter", type=int, default=50,
                        help="iterations per sequential template stage (default 50, as zstream fit)")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when present)")
    parser.add_argument("--out", type=Path, default=Path("accuracy-run"), help="work directory (default accuracy-run)")
    parser.add_argument("--reuse", action="store_true", help="skip steps whose output already exists in --out")
    parser.set_defaults(func=run)


def add_test_seed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--test-seed`` and ``--wide-seed``: the two test sets, shared by the benchmarks that score them."""
    parser.add_argument("--test-seed", type=int, default=777777, help="seed of the MUSE-deep test set (default 777777)")
    parser.add_argument("--wide-seed", type=int, default=515151, help="seed of the wide-population test set (default 515151)")


def scored_populations(args: argparse.Namespace) -> dict[str, tuple[int, SimConfig]]:
    """Seed and simulator settings of each test population, by name (``muse-deep``, ``wide``)."""
    return {"muse-deep": (args.test_seed, SimConfig()), "wide": (args.wide_seed, SimConfig.preset("wide"))}


def run(args: argparse.Namespace) -> int:
    """Run the acceptance pipeline and print the comparison table; returns the exit code."""
    # imported here: zstream.redshift loads torch
    from zstream.evaluate.calibrate import fit_reliability
    from zstream.evaluate.gallery import build_gallery
    from zstream.redshift import ScanConfig, Scanner, train_basis
    from zstream.redshift.classes import parse_k
    from zstream.redshift.reliability import ReliabilityModel

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, path: Path, action: Callable[[], None]) -> None:
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
        basis = train_basis(batch, None if args.k is None else parse_k(args.k), max_iter=args.max_iter,
                            sequential_iter=args.sequential_iter, device=args.device,
                            version=f"accuracy-seed{args.train_seed}")
        basis.meta["train_seed"] = args.train_seed
        save_basis(basis, basis_path)

    step("train", basis_path, train)
    basis = load_basis(basis_path)

    def scan_set(seed: int, n: int, prefix: str, config: SimConfig, reliability: ReliabilityModel | None) -> None:
        batch, truth = simulate(n, seed, config, progress=True)
        scanner = Scanner(basis, ScanConfig(reliability=reliability), device=args.device)
        started = time.perf_counter()
        tables = [scanner.scan(batch.take(range(start, min(start + SCAN_CHUNK, n))))
                  for start in tqdm(range(0, n, SCAN_CHUNK), desc=f"scan {prefix}", unit="chunk")]
        timings[f"scan {prefix} spectra/s"] = n / (time.perf_counter() - started)
        write_results(out / f"{prefix}_results.parquet", pa.concat_tables(tables))
        pq.write_table(truth, out / f"{prefix}_truth.parquet")

    step("scan tuning set", out / "tune_results.parquet",
         lambda: scan_set(args.tune_seed, args.n_tune, "tune", SimConfig(), None))
    calibration_path = out / "calibration.json"

    def calibrate() -> None:
        model = fit_reliability(read_results(out / "tune_results.parquet"), pq.read_table(out / "tune_truth.parquet"),
                                provenance={"tune_seed": args.tune_seed, "n_tune": args.n_tune})
        model.save(calibration_path)

    step("calibrate", calibration_path, calibrate)
    reliability = ReliabilityModel.load(calibration_path)
    populations = scored_populations(args)
    summary = {"args": {k: str(v) for k, v in vars(args).items() if k != "func"}, "timings_s": timings,
               "seeds": {"train": args.train_seed, "tune": args.tune_seed, "test": args.test_seed,
                         "wide_test": args.wide_seed}, "populations": {}}
    for name, (seed, config) in populations.items():
        step(f"scan {name} test set", out / f"{name}_results.parquet",
             lambda: scan_set(seed, args.n_test, name, config, reliability))
        results, truth = read_results(out / f"{name}_results.parquet"), pq.read_table(out / f"{name}_truth.parquet")
        report = score(results, truth)
        test_batch, _ = simulate(args.n_test, seed, config)
        write_report(report, out / f"report-{name}", results=results, truth=truth,
                     gallery=build_gallery(report["worst"], test_batch, basis=basis))
        summary["populations"][name] = {
            **headline(report),
            "class_accuracy": report["classification"]["accuracy"],
            "good_fraction_by_class": {c: v["good_fraction"] for c, v in report["redshift"]["by_class"].items()},
        }
    (out / "accuracy.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    _print_table(summary["populations"])
    return 0


def _print_table(populations: dict[str, dict]) -> None:
    names = list(populations)
    print(f"{'figure':24s} " + " ".join(f"{n:>10s}" for n in names) + f" {'paper':>8s} {'aim':>6s}")
    for figure in FIGURES:
        cells = " ".join(f"{_cell(populations[n][figure]):>10s}" for n in names)
        print(f"{figure:24s} {cells} {_cell(PAPER_FIGURES.get(figure)):>8s} {_cell(AIMS.get(figure)):>6s}")
    classes = sorted({c for n in names for c in populations[n]["good_fraction_by_class"]})
    for c in classes:
        cells = " ".join(f"{_cell(populations[n]['good_fraction_by_class'].get(c)):>10s}" for n in names)
        print(f"{'GF ' + c:24s} {cells} {'':>8s} {_cell(AIM_PER_CLASS):>6s}")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
