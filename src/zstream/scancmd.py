"""``zstream scan``: redshifts for every spectrum of a file, streamed in batches.

Each worker process holds its own :class:`~zstream.redshift.Scanner` (one torch
thread each, see ``ScanConfig.threads``); batches go out to the workers and
results come back in input order, with a bounded number in flight, so memory
stays flat however large the input.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from zstream.errors import UserError
from zstream.io.files import JSONL_SUFFIXES, PARQUET_SUFFIXES, iter_spectra
from zstream.io.messages import encode_result_json
from zstream.io.reasons import Reject
from zstream.io.records import SpectrumBatch
from zstream.io.meta import META_FIELDS, with_meta_columns
from zstream.io.results import conform_results, write_rejects
from zstream.io.schema import RESULT_SCHEMA

_WORKER_SCANNER = None
"""The scanner of a worker process (set by :func:`_start_worker`)."""


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
    from zstream.io.basis import load_basis
    from zstream.redshift import ScanConfig
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

    rejects: list[Reject] = []
    counts = {"results": 0, "sources": 0, "blends": 0}
    started = time.perf_counter()
    worker_args = (basis, config, args.device)
    with _ResultSink(args.out) as sink, _CurveSink(curves_path) as curve_sink, \
            _executor(args.workers, worker_args) as executor, \
            tqdm(unit=" spectra", desc="scan", file=sys.stderr, disable=args.quiet) as progress:
        in_flight: deque[Future] = deque()
        batches = iter_spectra(args.input, batch_size=args.batch_size, wavelength=args.wavelength)
        for batch, batch_rejects in batches:
            rejects.extend(batch_rejects)
            progress.update(len(batch_rejects))
            if len(batch):
                in_flight.append(executor.submit(_scan_batch, batch, keep))
            while len(in_flight) > 2 * args.workers or (in_flight and in_flight[0].done()):
                _collect(in_flight.popleft(), sink, curve_sink, counts, progress)
        while in_flight:
            _collect(in_flight.popleft(), sink, curve_sink, counts, progress)
    write_rejects(rejects_path, rejects)
    elapsed = time.perf_counter() - started
    print(
        f"{args.input}: {counts['results']} results ({counts['sources']} sources, {counts['blends']} blends), "
        f"{len(rejects)} rejected → {args.out}, {rejects_path}; {elapsed:.1f} s "
        f"({counts['results'] / max(elapsed, 1e-9):.1f} spectra/s)",
        file=sys.stderr,
    )
    return 0


def _executor(workers: int, worker_args: tuple) -> Executor:
    """A pool of ``workers`` processes, each with its own scanner (one worker: this process)."""
    if workers == 1:
        return _InlineExecutor(worker_args)
    # spawn, not fork: a forked child of a process that has used torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=worker_args)


class _InlineExecutor(Executor):
    """Runs each batch at once in this process: no worker start-up cost for ``--workers 1``."""

    def __init__(self, worker_args: tuple) -> None:
        _start_worker(*worker_args)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _start_worker(basis, config, device: str) -> None:
    """Build this worker's scanner once (template transforms are cached in it)."""
    from zstream.redshift import Scanner

    global _WORKER_SCANNER
    _WORKER_SCANNER = Scanner(basis, config, device=device)


def _scan_batch(batch: SpectrumBatch, keep: set[str]) -> tuple[pa.Table, pa.Table]:
    """Scan one batch in a worker; results and kept curves."""
    output = _WORKER_SCANNER.run(batch, keep_chi2=keep)
    return with_meta_columns(output.results, batch.extra), output.curves


def _collect(future: Future, sink: "_ResultSink", curve_sink: "_CurveSink", counts: dict, progress: tqdm) -> None:
    results, curves = future.result()
    sink.write(results)
    curve_sink.write(curves)
    counts["results"] += results.num_rows
    counts["sources"] += sum(results["is_source"].to_pylist())
    counts["blends"] += sum(results["is_blend"].to_pylist())
    progress.update(results.num_rows)


class _ResultSink:
    """Append result tables to a Parquet or JSONL file as they arrive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl = None

    def __enter__(self) -> "_ResultSink":
        if self.path.suffix.lower() in JSONL_SUFFIXES:
            self._jsonl = self.path.open("wb")
        else:
            self._parquet = pq.ParquetWriter(self.path, pa.schema([*RESULT_SCHEMA, *META_FIELDS]))
        return self

    def write(self, table: pa.Table) -> None:
        table = conform_results(table)
        if self._jsonl is not None:
            for row in table.to_pylist():
                self._jsonl.write(encode_result_json(row) + b"\n")
        else:
            self._parquet.write_table(table)

    def __exit__(self, *exc) -> None:
        for handle in (self._jsonl, self._parquet):
            if handle is not None:
                handle.close()


class _CurveSink:
    """Append kept χ²(z) curves to a Parquet file (nothing when no path)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "_CurveSink":
        if self.path is not None:
            from zstream.redshift import CURVE_SCHEMA

            self._writer = pq.ParquetWriter(self.path, CURVE_SCHEMA)
        return self

    def write(self, curves: pa.Table) -> None:
        if self._writer is not None and curves.num_rows:
            self._writer.write_table(curves)

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
