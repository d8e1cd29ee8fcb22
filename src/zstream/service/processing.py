"""One batch of input messages → scan results and dead letters, with no Kafka I/O.

This is the whole per-batch logic of the service: decode and validate each
message (``zstream.io``), set aside the records that cannot be scanned, scan the
rest in one call (``zstream.redshift``), and pair every result with the message
it came from. Kafka, metrics and offsets stay in :mod:`zstream.service.replica`.

A poison record cannot take its batch down: decoding refuses a message it
cannot handle with a reason (``internal_error`` for an unexpected exception),
and a scan that raises is retried on halves of the batch until the spectra that
raise are isolated (:func:`scan_isolating`); each of those becomes an
``internal_error`` dead letter and the rest are answered.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from zstream.io import RESULT_SCHEMA, Reason, RecordError, Reject, SpectrumBatch, concat_batches, decode_message
from zstream.io.reasons import internal_error
from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, header

if TYPE_CHECKING:
    from zstream.service.serving import ServingBasis


class InputRecord(Protocol):
    """What the service needs of a consumed message (kafka-python's ``ConsumerRecord`` fits)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    """A message (or one spectrum of it) that could not be scanned, and why."""

    source: InputRecord
    spectrum_id: str | None
    reason: Reason
    detail: str


@dataclass
class ProcessedBatch:
    """Outcome of one batch: every input is in ``sources`` (via a result) or in ``dead_letters``.

    Attributes
    ----------
    results : pyarrow.Table
        Scanner output, one row per accepted spectrum (RESULT_SCHEMA).
    sources : list of InputRecord
        The message each result row came from (same order as ``results``).
    spectra : SpectrumBatch
        The accepted spectra, same order as ``results`` (for the archive).
    dead_letters : list of DeadLetter
    scan_seconds : float
        Wall time of the scan alone (with the retries that isolate a failing spectrum).
    isolated : Counter
        Records refused as ``internal_error``, per stage (``decode``, ``scan``).
    """

    results: pa.Table
    sources: list[InputRecord]
    spectra: SpectrumBatch
    dead_letters: list[DeadLetter]
    scan_seconds: float = 0.0
    isolated: Counter = field(default_factory=Counter)


def process_records(records: Sequence[InputRecord], serving: ServingBasis, *, max_message_bytes: int) -> ProcessedBatch:
    """Decode, validate and scan a batch of input messages.

    Parameters
    ----------
    records : sequence of InputRecord
        Consumed messages, in consumption order.
    serving : ServingBasis
        Basis and scanner to use for the whole batch.
    max_message_bytes : int
        Messages larger than this are rejected before decoding.

    Returns
    -------
    ProcessedBatch
        Every record is accounted for: its spectra are results or dead letters.
    """
    kept: list[SpectrumBatch] = []
    sources: list[InputRecord] = []
    dead_letters: list[DeadLetter] = []
    seen_ids: set[str] = set()
    for record in records:
        content_type = (header(record.headers, CONTENT_TYPE_HEADER) or JSON_CONTENT_TYPE.encode()).decode("latin-1")
        try:
            batch, rejects = decode_message(record.value, content_type=content_type, max_bytes=max_message_bytes)
        except RecordError as error:
            dead_letters.append(DeadLetter(record, None, error.reason, error.detail))
            continue
        scannable, unscannable = screen_spectra(batch, serving, seen_ids)
        dead_letters.extend(DeadLetter(record, reject.spectrum_id, reject.reason, reject.detail)
                            for reject in rejects + unscannable)
        kept.append(batch.take(scannable))
        sources.extend([record] * len(scannable))
    isolated = Counter(decode=sum(letter.reason is Reason.INTERNAL_ERROR for letter in dead_letters))
    spectra = concat_batches(kept)
    started = time.perf_counter()
    results, failures = scan_isolating(serving.scanner.scan, spectra)
    scan_seconds = time.perf_counter() - started
    if failures:
        answered = [row for row in range(len(spectra)) if row not in failures]
        dead_letters += [DeadLetter(sources[row], spectra.spectrum_id[row], error.reason, error.detail)
                         for row, error in failures.items()]
        sources, spectra = [sources[row] for row in answered], spectra.take(answered)
        isolated["scan"] = len(failures)
    return ProcessedBatch(results, sources, spectra, dead_letters, scan_seconds, isolated)


def scan_isolating(
    scan: Callable[[SpectrumBatch], pa.Table], spectra: SpectrumBatch
) -> tuple[pa.Table, dict[int, RecordError]]:
    """Scan ``spectra``; when the scan raises, scan each half again until every failing spectrum is alone.

    Parameters
    ----------
    scan : callable
        ``Scanner.scan``: a batch of n spectra → a results table of n rows, in order.
    spectra : SpectrumBatch

    Returns
    -------
    results : pyarrow.Table
        One row per spectrum that scanned, in input order.
    failures : dict of int to RecordError
        Row of each spectrum whose scan raised on its own → its ``internal_error``.
    """
    if not len(spectra):
        return RESULT_SCHEMA.empty_table(), {}
    pieces: list[pa.Table] = []
    failures: dict[int, RecordError] = {}
    pending = [range(len(spectra))]
    while pending:
        rows = pending.pop()
        part = spectra if len(rows) == len(spectra) else spectra.take(rows)
        try:
            pieces.append(scan(part))
        except Exception as error:  # noqa: BLE001 (one bad spectrum must not stop its batch)
            if len(rows) == 1:
                failures[rows[0]] = internal_error(error, f"scanning spectrum {spectra.spectrum_id[rows[0]]!r}")
            else:
                middle = len(rows) // 2
                pending += [rows[middle:], rows[:middle]]  # the first half is popped, and so answered, first
    results = pa.concat_tables(pieces) if pieces else RESULT_SCHEMA.empty_table()
    return results, failures


def screen_spectra(
    batch: SpectrumBatch, serving: ServingBasis, seen_ids: set[str]
) -> tuple[list[int], list[Reject]]:
    """Split decoded spectra into those the scanner can take and those the service refuses before scanning.

    A spectrum is refused when its id was already taken in ``seen_ids`` (``duplicate_id_in_batch``)
    or when none of its good pixels falls in the basis coverage at any trial z
    (``no_overlap_with_basis``). The live service and ``zstream replay`` both screen with this,
    so a replay refuses exactly what the service would dead-letter.

    Parameters
    ----------
    batch : SpectrumBatch
    serving : ServingBasis
        Its ``observed_coverage`` is the wavelength span any trial z can use.
    seen_ids : set of str
        Ids already accepted; the ids accepted here are added to it.

    Returns
    -------
    rows : list of int
        Rows of ``batch`` to scan, in order.
    refused : list of Reject
    """
    rows: list[int] = []
    refused: list[Reject] = []
    for index, spectrum_id in enumerate(batch.spectrum_id):
        problem = _unscannable(spectrum_id, batch.wavelength[index], batch.ivar[index], seen_ids, serving)
        if problem:
            refused.append(Reject(spectrum_id, *problem))
            continue
        seen_ids.add(spectrum_id)
        rows.append(index)
    return rows, refused


def _unscannable(
    spectrum_id: str, wavelength: np.ndarray, ivar: np.ndarray, seen_ids: set[str], serving: ServingBasis
) -> tuple[Reason, str] | None:
    """The reason a decoded spectrum cannot be scanned in this batch, or ``None``."""
    if spectrum_id in seen_ids:
        return Reason.DUPLICATE_ID_IN_BATCH, f"spectrum_id {spectrum_id!r} appears more than once in one batch"
    low, high = serving.observed_coverage
    if not np.any((wavelength >= low) & (wavelength <= high) & (ivar > 0)):
        return Reason.NO_OVERLAP_WITH_BASIS, (
            f"no good pixel of {wavelength[0]:.1f}–{wavelength[-1]:.1f} Å falls in the basis coverage "
            f"{low:.1f}–{high:.1f} Å over the scanned redshift range"
        )
    return None
