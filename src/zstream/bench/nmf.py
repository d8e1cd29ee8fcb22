"""``zstream bench nmf``: seconds per Nearly-NMF iteration, engine vs the plain numpy reference.

Cases: (a) the paper's timing shape (750 spectra × 5,700 pixels, 5 templates,
~60% missing, ~10% of observed fluxes negative), in memory; (b) a larger set
(default 20,000 × 11,050) streamed to the engine from an Arrow IPC file in
chunks of spectra, so the engine's memory stays flat as n grows, while the
reference holds whole arrays. Each run happens in a fresh process so its peak
RSS is its own. Both start from the same templates and coefficients; the
final χ² of the two must agree. Times are given as wall clock and as process
CPU time per iteration: on a shared machine the CPU time of a one-thread run
is the steadier figure, since time spent descheduled does not count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

K = 5


@dataclass(frozen=True)
class Case:
    """One benchmark problem: shape, whether the engine streams it from disk, and its precision."""

    name: str
    n_spectra: int
    n_pixels: int
    dtype: str
    streamed: bool
    chunk_size: int | None


def synthetic_block(seed: int, index: int, n_rows: int, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of block ``index``: rank-5 non-negative signal + unit noise, ~60% weights 0, ~10% flux < 0."""
    templates = np.abs(np.random.default_rng(seed).normal(size=(K, n_pixels)))
    rng = np.random.default_rng([seed, index])
    flux = 0.8 * rng.uniform(size=(n_rows, K)) @ templates + rng.normal(size=(n_rows, n_pixels))
    ivar = np.where(rng.uniform(size=(n_rows, n_pixels)) < 0.6, 0.0, 1.0)
    return flux.astype(np.float32), ivar.astype(np.float32)


def starting_point(seed: int, n_spectra: int, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Shared start: unit-RMS random templates (k, p) and random coefficients (n, k)."""
    rng = np.random.default_rng([seed, 10**6])
    templates = rng.uniform(size=(K, n_pixels))
    templates /= np.sqrt(np.mean(templates**2, axis=1))[:, None]
    return templates, 0.3 * rng.uniform(size=(n_spectra, K))


def block_sizes(n_spectra: int, rows_per_block: int) -> list[int]:
    return [min(rows_per_block, n_spectra - start) for start in range(0, n_spectra, rows_per_block)]


def write_arrow_file(path: Path, seed: int, n_spectra: int, n_pixels: int, rows_per_block: int) -> None:
    """Write the large case block by block to an Arrow IPC file (list columns flux, ivar)."""
    schema = pa.schema([("flux", pa.list_(pa.float32())), ("ivar", pa.list_(pa.float32()))])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for index, n_rows in enumerate(block_sizes(n_spectra, rows_per_block)):
            flux, ivar = synthetic_block(seed, index, n_rows, n_pixels)
            writer.write_batch(pa.record_batch([_list_column(flux), _list_column(ivar)], schema=schema))


def _list_column(values: np.ndarray) -> pa.Array:
    offsets = np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)))


def read_arrow_batches(path: Path):
    """Iterate the file's record batches, reading each into fresh buffers (no memory map)."""
    with pa.OSFile(str(path), "rb") as source:
        reader = pa.ipc.open_file(source)
        for index in range(reader.num_record_batches):
            yield reader.get_batch(index)


def load_arrays(case: Case, seed: int, path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Whole (flux, ivar) arrays of a case, for the in-memory engine and the reference."""
    if path is None:
        return synthetic_block(seed, 0, case.n_spectra, case.n_pixels)
    blocks = [(b.column("flux").flatten().to_numpy(), b.column("ivar").flatten().to_numpy())
              for b in read_arrow_batches(path)]
    flux = np.concatenate([f for f, _ in blocks]).reshape(case.n_spectra, case.n_pixels)
    ivar = np.concatenate([v for _, v in blocks]).reshape(case.n_spectra, case.n_pixels)
    return flux, ivar


def run_engine(case: Case, seed: int, path: Path | None, iters: int, device: str | None) -> dict:
    """Time ``zstream.nmf.fit`` for ``iters`` iterations from the shared start (in a child process)."""
    from zstream.nmf import fit

    templates, coefficients = starting_point(seed, case.n_spectra, case.n_pixels)
    if case.streamed:
        X, V = (lambda: read_arrow_batches(path)), None
    else:
        X, V = load_arrays(case, seed, path)
    stamps = []
    result = fit(X, V, K, templates=templates, coefficients=coefficients, max_iter=iters, tol=0, device=device,
                 dtype=case.dtype, chunk_size=case.chunk_size,
                 callback=lambda iteration, chi2: stamps.append((time.perf_counter(), time.process_time())))
    wall, cpu = np.median(np.diff(np.array(stamps), axis=0), axis=0)
    return {"seconds_per_iter": float(wall), "cpu_seconds_per_iter": float(cpu), "chi2": result.chi2[-1],
            "device": result.settings["device"], "peak_rss_mb": _peak_rss_mb()}


def run_reference(case: Case, seed: int, path: Path | None, iters: int) -> dict:
    """Time ``zstream.nmf.reference.reference_iterations`` on the same data and start (in a child process)."""
    from zstream.nmf.reference import reference_iterations

    templates, coefficients = starting_point(seed, case.n_spectra, case.n_pixels)
    flux, ivar = load_arrays(case, seed, path)
    numpy_dtype = np.dtype(case.dtype)
    flux, ivar = flux.astype(numpy_dtype), ivar.astype(numpy_dtype)
    start, start_cpu = time.perf_counter(), time.process_time()
    _, _, chi2 = reference_iterations(flux, ivar, templates.astype(numpy_dtype), coefficients.astype(numpy_dtype),
                                      iters)
    return {"seconds_per_iter": (time.perf_counter() - start) / iters,
            "cpu_seconds_per_iter": (time.process_time() - start_cpu) / iters, "chi2": chi2[-1],
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(function, *args) -> dict:
    """Run ``function(*args)`` in a fresh spawned process so its peak RSS is measured alone."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def cases(args: argparse.Namespace) -> list[Case]:
    """The benchmark cases for the chosen options."""
    paper_n, paper_p = (250, 2000) if args.quick else (750, 5700)
    large_n = min(args.large_n, 2000) if args.quick else args.large_n
    large_p = 2000 if args.quick else 11050
    listed = []
    for dtype in args.dtype:
        listed.append(Case("paper", paper_n, paper_p, dtype, streamed=False, chunk_size=None))
        if not args.skip_large:
            listed.append(Case("large", large_n, large_p, dtype, streamed=True, chunk_size=args.chunk_size))
            listed.append(Case("large/4", large_n // 4, large_p, dtype, streamed=True, chunk_size=args.chunk_size))
    return listed


def run(args: argparse.Namespace) -> int:
    """Run every case, print one line per case with the ratio, χ² agreement and peak RSS."""
    if args.threads:
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[variable] = str(args.threads)
    print(f"zstream bench nmf: k={K}, {args.iters} iterations per run, device={args.device or 'auto'}, "
          f"threads={args.threads or 'all'} (engine and numpy)")
    header = (f"{'case':8s} {'n':>6s} {'p':>6s} {'dtype':8s} {'engine s/it':>12s} {'numpy s/it':>11s} "
              f"{'speedup':>8s} {'engine CPU s/it':>16s} {'numpy CPU s/it':>15s} {'CPU speedup':>12s} "
              f"{'chi2 rel diff':>14s} {'engine RSS MB':>14s} {'numpy RSS MB':>13s}")
    print(header)
    with tempfile.TemporaryDirectory(prefix="zstream-bench-nmf-") as tmp:
        files: dict[tuple[int, int], Path] = {}
        for case in tqdm(cases(args), desc="nmf bench", unit="case", file=sys.stderr):
            path = None
            if case.streamed:
                key = (case.n_spectra, case.n_pixels)
                if key not in files:
                    files[key] = Path(tmp) / f"spectra_{case.n_spectra}x{case.n_pixels}.arrow"
                    write_arrow_file(files[key], args.seed, case.n_spectra, case.n_pixels, args.chunk_size)
                path = files[key]
            engine = _in_child(run_engine, case, args.seed, path, args.iters, args.device)
            reference = None if case.name == "large/4" else _in_child(run_reference, case, args.seed, path,
                                                                       args.iters)
            print(_row(case, engine, reference), flush=True)
    return 0


def _row(case: Case, engine: dict, reference: dict | None) -> str:
    if reference is None:
        ref_time, speedup, ref_cpu, cpu_speedup, agreement, ref_rss = "-", "-", "-", "-", "-", "-"
    else:
        ref_time = f"{reference['seconds_per_iter']:.4f}"
        speedup = f"{reference['seconds_per_iter'] / engine['seconds_per_iter']:.2f}x"
        ref_cpu = f"{reference['cpu_seconds_per_iter']:.4f}"
        cpu_speedup = f"{reference['cpu_seconds_per_iter'] / engine['cpu_seconds_per_iter']:.2f}x"
        agreement = f"{abs(engine['chi2'] - reference['chi2']) / abs(reference['chi2']):.1e}"
        ref_rss = f"{reference['peak_rss_mb']:.0f}"
    return (f"{case.name:8s} {case.n_spectra:6d} {case.n_pixels:6d} {case.dtype:8s} "
            f"{engine['seconds_per_iter']:12.4f} {ref_time:>11s} {speedup:>8s} "
            f"{engine['cpu_seconds_per_iter']:16.4f} {ref_cpu:>15s} {cpu_speedup:>12s} {agreement:>14s} "
            f"{engine['peak_rss_mb']:14.0f} {ref_rss:>13s}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``zstream bench nmf``."""
    parser = subparsers.add_parser(
        "nmf", help="seconds per Nearly-NMF iteration: torch engine vs plain numpy, with χ² agreement and peak RSS",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=20, help="iterations timed per run (default 20)")
    parser.add_argument("--device", default=None, help="engine device: cpu, cuda, or auto (default)")
    parser.add_argument("--dtype", nargs="+", choices=["float32", "float64"], default=["float32", "float64"],
                        help="precisions to run (default both)")
    parser.add_argument("--large-n", type=int, default=20000, help="spectra in the large case (default 20000)")
    parser.add_argument("--chunk-size", type=int, default=1000,
                        help="spectra per Arrow batch / engine chunk in the large case (default 1000)")
    parser.add_argument("--skip-large", action="store_true", help="only run the paper-shape case")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for both engine and numpy in the child processes (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="small shapes for a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="data and start seed (default 0)")
    parser.set_defaults(func=run)
