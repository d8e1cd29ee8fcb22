"""``zstream bench scan``: redshift scan throughput of the batched engine against the exhaustive reference.

Ours: :class:`zstream.redshift.Scanner` (FFT normal equations, batched NNLS, exact
refinement of several candidates per class, sky-residual nuisance, blend rescan)
on simulated MUSE-like spectra, one torch thread per process. Baseline:
:func:`zstream.redshift.reference.scan_spectrum`, the paper's loop doing the same
work (every class on its trial grid, the sky shapes as free-sign columns,
scipy's NNLS at every trial redshift, then again with the blend-augmented
basis), timed on a small subset in the same run. Both are single-threaded, so
the ratio is per core.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor


from zstream.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``zstream bench scan``."""
    parser = subparsers.add_parser(
        "scan",
        help="redshift scan spectra/s (batched engine vs exhaustive per-z NNLS reference), per core and all cores",
        description=__doc__,
    )
    parser.add_argument("--spectra", type=int, default=64, help="simulated spectra for our path (default 64)")
    parser.add_argument("--reference-spectra", type=int, default=2,
                        help="of those, how many the (slow) reference scans (default 2)")
    parser.add_argument("--basis", help="basis file to use (default: a k=10 basis fitted to simulated spectra)")
    parser.add_argument("--z-step", type=float, default=0.0005, help="trial redshift step over 0–6.7 (default 0.0005)")
    parser.add_argument("--batch-size", type=int, default=16, help="spectra per Scanner batch (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the all-cores run (default 2)")
    parser.add_argument("--no-blend", action="store_true", help="time the scan without the blend rescan")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time both paths; print spectra/s per core, all-cores throughput, the ratio and peak memory."""
    from zstream.redshift import ScanConfig, Scanner, reference
    from zstream.redshift.observed import sky_column
    from zstream.sim import simulate

    if min(args.spectra, args.reference_spectra, args.batch_size, args.workers) < 1:
        raise UserError("--spectra, --reference-spectra, --batch-size and --workers must be >= 1")
    if args.reference_spectra > args.spectra:
        raise UserError(f"--reference-spectra ({args.reference_spectra}) cannot exceed --spectra ({args.spectra})")
    basis = _basis(args)
    batch, _ = simulate(args.spectra, seed=args.seed + 1)
    config = ScanConfig(z_step=args.z_step, batch_size=args.batch_size, blend=not args.no_blend)
    scanner = Scanner(basis, config, device="cpu")
    scanner.scan(batch.take(range(min(2, len(batch)))))  # warm-up: template transforms, allocator

    started, cpu_started = time.perf_counter(), time.process_time()
    results = scanner.scan(batch).to_pylist()
    ours = len(batch) / (time.perf_counter() - started)
    ours_cpu = len(batch) / (time.process_time() - cpu_started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parallel = _parallel_rate(basis, config, batch, args.workers)

    subset = range(args.reference_spectra)
    started, cpu_started = time.perf_counter(), time.process_time()
    agree = 0
    skies = sky_column(batch)
    for i in subset:
        z_reference = reference.scan_spectrum(
            basis, batch.wavelength[i], batch.flux[i], batch.ivar[i], config, sky=skies[i]
        ).z_best
        agree += results[i]["z"] is not None and abs(results[i]["z"] - z_reference) <= config.z_step * (1 + z_reference)
    baseline = args.reference_spectra / (time.perf_counter() - started)
    baseline_cpu = args.reference_spectra / (time.process_time() - cpu_started)

    classes = ", ".join(f"{name} k={scan.templates.shape[0]} ({scan.z_grid.size} trial z)"
                        for name, scan in scanner.classes.items())
    print(f"basis {basis.version}: {classes}; z step {config.z_step}; blend rescan {'on' if config.blend else 'off'}; "
          f"sky residual shapes and variance from the sky column; {len(batch)} simulated MUSE-like spectra")
    print("  (per CPU-second: throughput of one fully available core, insensitive to other load)")
    print(f"  ours, 1 process, 1 torch thread: {ours:9.2f} spectra/s wall, {ours_cpu:9.2f} per CPU-second")
    print(f"  ours, {args.workers} processes:             {parallel:9.2f} spectra/s wall")
    print(f"  reference, 1 process:            {baseline:9.4f} spectra/s wall, {baseline_cpu:9.4f} per CPU-second"
          f"  ({args.reference_spectra} spectra)")
    print(f"  ratio ours/reference per core:   {ours / baseline:9.0f}x wall, {ours_cpu / baseline_cpu:9.0f}x CPU")
    print(f"  best z agrees with reference:    {agree}/{args.reference_spectra} within one z step (1+z)")
    print(f"  peak RSS of the timing process:  {peak_mb:9.0f} MB")
    return 0


def _basis(args: argparse.Namespace):
    """The basis from ``--basis``, or a quick k-template fit to simulated spectra with known z."""
    from zstream.io.basis import load_basis
    from zstream.redshift import train_basis
    from zstream.sim import simulate

    if args.basis:
        return load_basis(args.basis)
    training, _ = simulate(200, seed=args.seed)
    print(f"fitting a basis (fit's default k per class) to {len(training)} simulated spectra (pass --basis to skip)",
          file=sys.stderr)
    return train_basis(training, None, max_iter=40, sequential_iter=5, device="cpu", version="bench-scan")


def _parallel_rate(basis, config, batch, workers: int) -> float:
    """Spectra/s with ``workers`` processes, each scanning its share with its own (warmed-up) Scanner."""
    shares = [batch.take(range(w, len(batch), workers)) for w in range(workers)]
    warm_up = batch.take(range(1))
    # spawn, not fork: a forked child of a process that has used torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(basis, config, warm_up)
    ) as pool:
        list(pool.map(_scan_share, [batch.take(range(0)) for _ in range(workers)]))  # start every worker
        started = time.perf_counter()
        list(pool.map(_scan_share, shares))
        return len(batch) / (time.perf_counter() - started)


_WORKER_SCANNER = None


def _start_worker(basis, config, warm_up) -> None:
    """Build the worker's Scanner and scan one spectrum, so template transforms are ready."""
    from zstream.redshift import Scanner

    global _WORKER_SCANNER
    _WORKER_SCANNER = Scanner(basis, config, device="cpu")
    _WORKER_SCANNER.scan(warm_up)


def _scan_share(share) -> int:
    return _WORKER_SCANNER.scan(share).num_rows
