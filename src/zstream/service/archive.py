"""Partitioned Parquet archive of confidently measured spectra, with a retention bound.

Layout under the archive root::

    spectra/date=YYYY-MM-DD/part-<unix-ns>-<pid>.parquet   spectrum columns + z, basis_version, delta_chi2
    bases/<version>.parquet                                every promoted basis
    anchors/part-<unix-ns>-<pid>.parquet                   labelled spectra (known z): the promotion gate's yardstick

File names sort by write time, which is what "recent window" and retention use.
Refits read training sets from here and ``zstream replay`` reads it back. Every
replica appends; only the refit leader enforces retention
(:class:`~zstream.service.leadership.RefitLease`), and readers skip a file that
retention removed between listing and reading it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from zstream.io import Basis, SpectrumBatch, save_basis, spectra_to_table, table_to_spectra

TRUST_COLUMNS = ("p_source", "p_z_ok")
"""Reliability of each live result, archived with it so refits can train on trusted ones only."""


class Archive:
    """Append-only store of spectra with their accepted redshifts.

    Parameters
    ----------
    root : Path
        Archive directory (created if missing).
    retention_days : float
        Date partitions older than this are removed.
    max_spectra : int
        Oldest files are removed while more spectra than this are stored.
    """

    def __init__(self, root: Path, retention_days: float = 30.0, max_spectra: int = 1_000_000):
        self.root = Path(root)
        self.retention_days = retention_days
        self.max_spectra = max_spectra
        self.spectra_dir.mkdir(parents=True, exist_ok=True)
        self.bases_dir.mkdir(parents=True, exist_ok=True)
        self.anchors_dir.mkdir(parents=True, exist_ok=True)

    @property
    def spectra_dir(self) -> Path:
        """Directory of the spectrum partitions."""
        return self.root / "spectra"

    @property
    def anchors_dir(self) -> Path:
        """Directory of the labelled anchor set (never touched by retention)."""
        return self.root / "anchors"

    @property
    def bases_dir(self) -> Path:
        """Directory of saved bases."""
        return self.root / "bases"

    def append(self, spectra: SpectrumBatch, results: pa.Table) -> int:
        """Write the spectra whose result is confident; return how many were archived.

        Parameters
        ----------
        spectra : SpectrumBatch
            Scanned spectra, row-aligned with ``results``.
        results : pyarrow.Table
            Their scan results (RESULT_SCHEMA).
        """
        confident = np.asarray(confident_mask(results))
        if not confident.any():
            return 0
        rows = np.flatnonzero(confident)
        chosen = spectra.take(rows)  # pass-through columns (the sky spectrum among them) kept for replays
        chosen.z = results.column("z").to_numpy(zero_copy_only=False)[rows].astype(np.float64)
        chosen.extra = _with_spectype(chosen.extra, results.column("spectype").take(pa.array(rows)))
        table = spectra_to_table(chosen)
        for name in ("basis_version", "delta_chi2", *TRUST_COLUMNS):
            table = table.append_column(name, results.column(name).take(pa.array(rows)))
        self._write(table)
        return len(rows)

    def add_labelled(self, spectra: SpectrumBatch, label: str = "labelled") -> int:
        """Archive spectra whose redshift is known (``spectra.z``), e.g. the training set, so refits see it.

        They join the anchor set too (:meth:`add_anchors`). Spectra without a finite ``z`` are
        skipped; returns how many were archived.
        """
        self.add_anchors(spectra)
        known = np.flatnonzero(np.isfinite(np.asarray(spectra.z, dtype=np.float64)))
        chosen = spectra.take(known)
        labelled = chosen.extra is not None and "spectype" in chosen.extra.column_names
        spectype = chosen.extra.column("spectype").cast(pa.string()) if labelled else pa.nulls(len(chosen), pa.string())
        chosen.extra = _with_spectype(chosen.extra, spectype)
        table = spectra_to_table(chosen)
        table = table.append_column("basis_version", pa.array([label] * len(chosen), pa.string()))
        table = table.append_column("delta_chi2", pa.nulls(len(chosen), pa.float64()))
        self._write(table)
        return len(chosen)

    def add_anchors(self, spectra: SpectrumBatch) -> int:
        """Add spectra of known redshift to the anchor set only (not to refit training); return how many."""
        known = np.flatnonzero(np.isfinite(np.asarray(spectra.z, dtype=np.float64)))
        if known.size:
            _write_atomically(spectra_to_table(spectra.take(known)),
                              self.anchors_dir / f"part-{time.time_ns():020d}-{os.getpid()}.parquet")
        return int(known.size)

    def read_anchors(self, n: int) -> SpectrumBatch | None:
        """Up to ``n`` anchor spectra (the newest files first), or None when there are none."""
        tables = []
        for path in sorted(self.anchors_dir.glob("part-*.parquet"), reverse=True):
            if sum(table.num_rows for table in tables) >= n:
                break
            tables.append(pq.read_table(path))
        return table_to_spectra(_concat(tables).slice(0, n))[0] if tables else None

    def _write(self, table: pa.Table) -> None:
        now = time.time_ns()
        partition = self.spectra_dir / f"date={dt.datetime.fromtimestamp(now / 1e9, dt.UTC):%Y-%m-%d}"
        partition.mkdir(exist_ok=True)
        _write_atomically(table, partition / f"part-{now:020d}-{os.getpid()}.parquet")

    def files(self) -> list[Path]:
        """Spectrum files, oldest first."""
        return sorted(self.spectra_dir.glob("date=*/part-*.parquet"), key=lambda path: path.name)

    def count(self) -> int:
        """Number of archived spectra (from Parquet footers)."""
        return sum(_rows(path) for path in self.files())

    def count_since(self, unix_ns: int) -> int:
        """Spectra archived (by any replica) after ``unix_ns``; only that day's partitions onwards are listed."""
        day = f"date={dt.datetime.fromtimestamp(unix_ns / 1e9, dt.UTC):%Y-%m-%d}"
        partitions = [path for path in self.spectra_dir.glob("date=*") if path.name >= day]
        return sum(_rows(path) for partition in partitions for path in partition.glob("part-*.parquet")
                   if int(path.name.split("-")[1]) > unix_ns)

    def read_recent(self, n: int) -> pa.Table:
        """The ``n`` most recently archived rows (fewer if the archive is smaller), oldest first."""
        tables: list[pa.Table] = []
        remaining = n
        for path in reversed(self.files()):
            if remaining <= 0:
                break
            table = _read(path)
            if table is None:
                continue
            tables.append(table.slice(max(0, table.num_rows - remaining)))
            remaining -= tables[-1].num_rows
        return _concat(list(reversed(tables)))

    def sample_older(self, skip_recent: int, n: int, seed: int) -> pa.Table:
        """A uniform random sample (reservoir) of ``n`` rows from all but the ``skip_recent`` newest."""
        files = self.files()
        counts = np.array([_rows(path) for path in files], dtype=np.int64)
        older_total = max(0, int(counts.sum()) - skip_recent)
        if older_total == 0 or n <= 0:
            return _concat([])
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(older_total, size=min(n, older_total), replace=False))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        tables = []
        for path, start, count in zip(files, starts, counts):
            inside = picks[(picks >= start) & (picks < start + count)] - start
            table = _read(path) if inside.size else None
            if table is not None:
                tables.append(table.take(pa.array(inside)))
        return _concat(tables)

    def iter_batches(self) -> Iterator[SpectrumBatch]:
        """Every archived file as a SpectrumBatch (with ``z``), oldest first, for replays."""
        for path in self.files():
            table = _read(path)
            if table is not None:
                yield table_to_spectra(table)[0]

    def save_basis(self, basis: Basis) -> Path:
        """Keep a copy of a served basis under ``bases/`` (once per version; replicas sharing it may race)."""
        path = self.bases_dir / f"{basis.version}.parquet"
        if not path.exists():
            staging = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # each writer its own; the rename is atomic
            save_basis(basis, staging)
            staging.replace(path)
        return path

    def enforce_retention(self) -> int:
        """Delete expired partitions and the oldest files beyond ``max_spectra``; return files removed."""
        removed = 0
        cutoff = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=self.retention_days)
        for partition in sorted(self.spectra_dir.glob("date=*")):
            if dt.date.fromisoformat(partition.name.removeprefix("date=")) < cutoff:
                removed += len(list(partition.glob("*.parquet")))
                shutil.rmtree(partition)
        files = self.files()
        counts = [_rows(path) for path in files]
        excess = sum(counts) - self.max_spectra
        for path, count in zip(files, counts):
            if excess <= 0:
                break
            path.unlink()
            excess -= count
            removed += 1
        return removed


def _write_atomically(table: pa.Table, final: Path) -> None:
    """Write under a temporary name, then rename: readers never see half a file."""
    staging = final.with_suffix(".tmp")
    pq.write_table(table, staging)
    staging.replace(final)


def _rows(path: Path) -> int:
    """Rows of an archive file from its footer; 0 when retention removed it meanwhile."""
    try:
        return pq.read_metadata(path).num_rows
    except FileNotFoundError:
        return 0


def _read(path: Path) -> pa.Table | None:
    """An archive file, or None when retention removed it meanwhile."""
    try:
        return pq.read_table(path)
    except FileNotFoundError:
        return None


def confident_mask(results: pa.Table) -> pa.ChunkedArray:
    """Results worth learning from: a source, not a blend, no warning that doubts the redshift.

    Masked bad pixels and a solver limit at some other trial z do not disqualify a result.
    """
    from zstream.redshift import ZWarning  # imported here: zstream.redshift loads torch

    doubtful = int(
        ZWarning.LITTLE_COVERAGE | ZWarning.SMALL_DELTA_CHI2 | ZWarning.Z_AT_EDGE
        | ZWarning.NEGATIVE_MEDIAN_FLUX | ZWarning.ALL_MASKED | ZWarning.BAD_CURVATURE
    )
    clean = pc.equal(pc.bit_wise_and(results.column("warnings"), doubtful), 0)
    confident = pc.and_(pc.and_(results.column("is_source"), pc.invert(results.column("is_blend"))), clean)
    return pc.fill_null(confident, False)


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def _with_spectype(extra: pa.Table | None, spectype: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Pass-through columns with ``spectype`` set (replaced if present): refits train each class on its own."""
    if extra is None:
        return pa.table({"spectype": spectype})
    if "spectype" in extra.column_names:
        extra = extra.drop_columns(["spectype"])
    return extra.append_column("spectype", spectype)
