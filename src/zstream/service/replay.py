"""Reprocessing archived or past traffic with a pinned basis version.

Sources are an archive directory (what the service wrote under ``--archive``), a
spectrum file or dataset readable by ``zstream.io.iter_spectra``, or a topic
between offsets or timestamps. Topic messages go through exactly the code the
live service uses (:func:`~zstream.service.processing.process_records`), so a
replay with the basis a live run used reproduces its results bit for bit; file
spectra are screened by the service's own checks
(:func:`~zstream.service.processing.screen_spectra`), so a file replay refuses what
the live service would dead-letter.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition

from zstream.errors import UserError
from zstream.io import RESULT_SCHEMA, Basis, Reject, SpectrumBatch, conform_results, iter_spectra, load_basis
from zstream.service.archive import Archive
from zstream.service.config import ServiceConfig
from zstream.io.meta import meta_json, with_meta_columns
from zstream.service.outputs import result_records
from zstream.service.processing import InputRecord, process_records, scan_isolating, screen_spectra
from zstream.service.serving import ServingBasis
from zstream.service.versions import BasisTopicReader

_IDLE_TIMEOUT_S = 30.0


def is_archive(path: Path) -> bool:
    """True when ``path`` is a service archive directory (has ``spectra/``)."""
    return (Path(path) / "spectra").is_dir()


def file_batches(path: Path, batch_size: int) -> Iterator[tuple[SpectrumBatch, list[Reject]]]:
    """Spectra from an archive directory or any file ``zstream.io.iter_spectra`` reads, in batches.

    Parameters
    ----------
    path : Path
    batch_size : int
        Spectra per batch for plain files (archive files are read one file per batch).
    """
    if is_archive(path):
        for batch in Archive(path).iter_batches():
            yield batch, []
    else:
        yield from iter_spectra(path, batch_size=batch_size)


def replay_files(
    path: Path, serving: ServingBasis, batch_size: int, progress: Callable[[int], None] = lambda count: None
) -> tuple[pa.Table, list[Reject]]:
    """Scan every spectrum of an archive or spectrum file as the live service would.

    Ids are screened across the whole replay: a spectrum id seen earlier in the file is
    refused as ``duplicate_id_in_batch``, like a repeat within one live batch.

    Parameters
    ----------
    path : Path
        Archive directory or spectrum file/dataset.
    serving : ServingBasis
        The pinned basis and its scanner.
    batch_size : int
        Spectra per scanned batch (plain files).
    progress : callable
        Called with the number of records handled after each batch.

    Returns
    -------
    results : pyarrow.Table
        ``RESULT_SCHEMA`` rows, in input order.
    rejects : list of Reject
        Records refused on reading, by the service's screen, or by a scan that raised.
    """
    tables, rejects, seen = [with_meta_columns(RESULT_SCHEMA.empty_table(), None)], [], set()
    for batch, batch_rejects in file_batches(path, batch_size):
        rows, refused = screen_spectra(batch, serving, seen)
        spectra = batch.take(rows)
        results, failures = scan_isolating(serving.scanner.scan, spectra)
        answered = spectra.take([row for row in range(len(spectra)) if row not in failures]) if failures else spectra
        tables.append(with_meta_columns(results, answered.extra))
        rejects += batch_rejects + refused
        rejects += [Reject(spectra.spectrum_id[row], error.reason, error.detail) for row, error in failures.items()]
        progress(len(batch) + len(batch_rejects))
    return pa.concat_tables(tables), rejects


def replay_topic(
    consumer: KafkaConsumer,
    topic: str,
    span: TopicRange,
    serving: ServingBasis,
    config: ServiceConfig,
    progress: Callable[[int], None] = lambda count: None,
) -> tuple[pa.Table, list[Reject]]:
    """Process the messages of ``topic`` within ``span`` with the live service's per-batch code.

    Parameters
    ----------
    consumer : KafkaConsumer
        Read through :func:`topic_batches` (so without a group id: nothing is committed).
    topic : str
    span : TopicRange
    serving : ServingBasis
    config : ServiceConfig
        Its ``batch_size`` and ``max_message_bytes`` apply as in the service.
    progress : callable
        Called with the number of messages handled after each batch.

    Returns
    -------
    results : pyarrow.Table
        Result records as the service publishes them (with input topic, partition, offset).
    rejects : list of Reject
        What the service would have dead-lettered.
    """
    rows, rejects = [], []
    for records in topic_batches(consumer, topic, span, config.batch_size):
        started = time.monotonic()
        processed = process_records(records, serving, max_message_bytes=config.max_message_bytes)
        elapsed_ms = (time.monotonic() - started) * 1000.0
        rows += result_records(processed, elapsed_ms)
        rejects += [Reject(letter.spectrum_id, letter.reason, letter.detail) for letter in processed.dead_letters]
        progress(len(records))
    if not rows:
        return with_meta_columns(RESULT_SCHEMA.empty_table(), None), rejects
    return conform_results(pa.Table.from_pylist([row | {"meta": meta_json(row["meta"])} for row in rows])), rejects


def resolve_basis(config: ServiceConfig, version: str | None, archive: Path | None) -> Basis:
    """The pinned basis: ``config.basis`` (a file), or ``version`` from an archive's ``bases/`` or the basis topic.

    Raises
    ------
    UserError
        No basis given, or the version is found nowhere.
    """
    if version is None:
        if config.basis is None:
            raise UserError("replay needs a basis: pass --basis FILE or --basis-version VERSION")
        return load_basis(config.basis)
    if archive is not None and (Archive(archive).bases_dir / f"{version}.parquet").exists():
        return load_basis(Archive(archive).bases_dir / f"{version}.parquet")
    from zstream.service import clients

    reader = BasisTopicReader(clients.plain_consumer(config), config.basis_topic)
    try:
        return reader.catch_up().basis(version)
    finally:
        reader.close()


@dataclass(frozen=True)
class TopicRange:
    """Which part of a topic to replay: offsets (end exclusive) or timestamps; None = open end.

    Offsets apply to every selected partition; timestamps are resolved per partition.
    """

    start_offset: int | None = None
    end_offset: int | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    partitions: tuple[int, ...] | None = None


def topic_batches(consumer: KafkaConsumer, topic: str, span: TopicRange, batch_size: int) -> Iterator[list[InputRecord]]:
    """Records of ``topic`` within ``span``, partition by partition in offset order, in batches.

    Parameters
    ----------
    consumer : KafkaConsumer
        A consumer without group id (nothing is committed).
    topic : str
    span : TopicRange
    batch_size : int
        Records per yielded batch.
    """
    available = consumer.partitions_for_topic(topic)
    if not available:
        raise UserError(f"topic {topic!r} does not exist on the broker; check --from-topic")
    chosen = sorted(span.partitions if span.partitions is not None else available)
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise UserError(f"topic {topic!r} has no partition(s) {missing}; it has {sorted(available)}")
    for partition in chosen:
        start, end = _bounds(consumer, TopicPartition(topic, partition), span)
        yield from _read_partition(consumer, TopicPartition(topic, partition), start, end, batch_size)


def _bounds(consumer: KafkaConsumer, partition: TopicPartition, span: TopicRange) -> tuple[int, int]:
    first = consumer.beginning_offsets([partition])[partition]
    last = consumer.end_offsets([partition])[partition]
    start = max(first, span.start_offset) if span.start_offset is not None else first
    end = min(last, span.end_offset) if span.end_offset is not None else last
    if span.start_time is not None:
        start = max(start, _offset_at(consumer, partition, span.start_time, last))
    if span.end_time is not None:
        end = min(end, _offset_at(consumer, partition, span.end_time, last))
    return start, end


def _offset_at(consumer: KafkaConsumer, partition: TopicPartition, when: dt.datetime, default: int) -> int:
    """First offset with timestamp ≥ ``when`` (``default`` when none is that late)."""
    found = consumer.offsets_for_times({partition: int(when.timestamp() * 1000)})[partition]
    return default if found is None else found.offset


def _read_partition(
    consumer: KafkaConsumer, partition: TopicPartition, start: int, end: int, batch_size: int
) -> Iterator[list[InputRecord]]:
    if start >= end:
        return
    consumer.assign([partition])
    consumer.seek(partition, start)
    batch: list[InputRecord] = []
    idle_since = time.monotonic()
    while consumer.position(partition) < end:
        records = consumer.poll(timeout_ms=1000, max_records=batch_size).get(partition, [])
        if records:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > _IDLE_TIMEOUT_S:
            raise UserError(
                f"replay of {partition.topic}[{partition.partition}] stalled at offset "
                f"{consumer.position(partition)} (expected data up to {end}) for {_IDLE_TIMEOUT_S:.0f} s"
            )
        for record in records:
            if record.offset >= end:
                break
            batch.append(record)
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
