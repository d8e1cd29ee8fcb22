"""Redshifts for a whole spectrum file, streamed in batches through a pool of worker processes.

Each worker process holds its own :class:`~zstream.redshift.Scanner` (one torch
thread each, see ``ScanConfig.threads``); batches go out to the workers and
results come back in input order, with a bounded number in flight, so memory
stays flat however large the input.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from zstream.io.meta import with_meta_columns
from zstream.io.reasons import Reject
from zstream.io.records import Basis, SpectrumBatch
from zstream.io.sinks import ResultSink, TableSink
from zstream.redshift.config import ScanConfig
from zstream.redshift.scanner import Scanner

_WORKER_SCANNER: Scanner | None = None
"""The scanner of a worker process (set by :func:`_start_worker`)."""


@dataclass
class ScanTally:
    """What a streamed scan wrote: result, source and blend counts, and the records refused on reading."""

    results: int = 0
    sources: int = 0
    blends: int = 0
    rejects: list[Reject] = field(default_factory=list)


def scan_stream(
    batches: Iterable[tuple[SpectrumBatch, list[Reject]]],
    basis: Basis,
    config: ScanConfig,
    results: ResultSink,
    curves: TableSink,
    *,
    workers: int = 1,
    device: str = "cpu",
    keep_chi2: Collection[str] = (),
    progress: Callable[[int], None] = lambda count: None,
) -> ScanTally:
    """Scan every batch with ``workers`` processes and append results and kept curves in input order.

    Parameters
    ----------
    batches : iterable of (SpectrumBatch, list of Reject)
        What :func:`zstream.io.iter_spectra` yields.
    basis, config : Basis, ScanConfig
        Every worker builds its scanner from these once.
    results, curves : ResultSink, TableSink
        Open sinks for the result rows and the χ²(z) curves of ``keep_chi2``.
    workers : int
        Worker processes; 1 scans in this process.
    device : str
        torch device of the workers.
    keep_chi2 : collection of str
        Spectrum ids whose χ²(z) curves are kept.
    progress : callable
        Called with the number of records just handled (results or rejects).

    Returns
    -------
    ScanTally
    """
    tally = ScanTally()
    keep = set(keep_chi2)
    in_flight: deque[Future] = deque()

    def collect(future: Future) -> None:
        table, kept_curves = future.result()
        results.write(table)
        curves.write(kept_curves)
        tally.results += table.num_rows
        tally.sources += sum(table["is_source"].to_pylist())
        tally.blends += sum(table["is_blend"].to_pylist())
        progress(table.num_rows)

    with _executor(workers, (basis, config, device)) as executor:
        for batch, batch_rejects in batches:
            tally.rejects.extend(batch_rejects)
            progress(len(batch_rejects))
            if len(batch):
                in_flight.append(executor.submit(_scan_batch, batch, keep))
            while len(in_flight) > 2 * workers or (in_flight and in_flight[0].done()):
                collect(in_flight.popleft())
        while in_flight:
            collect(in_flight.popleft())
    return tally


def _executor(workers: int, worker_args: tuple) -> Executor:
    """A pool of ``workers`` processes, each with its own scanner (one worker: this process)."""
    if workers == 1:
        return _InlineExecutor(worker_args)
    # spawn, not fork: a forked child of a process that has used torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=worker_args)


class _InlineExecutor(Executor):
    """Runs each batch at once in this process: no worker start-up cost for one worker."""

    def __init__(self, worker_args: tuple) -> None:
        _start_worker(*worker_args)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _start_worker(basis: Basis, config: ScanConfig, device: str) -> None:
    """Build this worker's scanner once (template transforms are cached in it)."""
    global _WORKER_SCANNER
    _WORKER_SCANNER = Scanner(basis, config, device=device)


def _scan_batch(batch: SpectrumBatch, keep: set[str]) -> tuple[pa.Table, pa.Table]:
    """Scan one batch in a worker; results and kept curves."""
    output = _WORKER_SCANNER.run(batch, keep_chi2=keep)
    return with_meta_columns(output.results, batch.extra), output.curves
