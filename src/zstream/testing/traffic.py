"""Putting simulated spectra onto a topic and reading whole topics back: for the demo, benchmarks and tests."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition

from zstream.errors import UserError
from zstream.io import SpectrumBatch, encode_spectrum_json, spectra_to_table, spectrum_records
from zstream.service.clients import ARROW_CONTENT_TYPE, CONTENT_TYPE_HEADER
from zstream.service.message import Message


def json_messages(batch: SpectrumBatch) -> Iterator[Message]:
    """One JSON spectrum record per spectrum, keyed by ``spectrum_id``."""
    for record in spectrum_records(batch):
        yield Message(record["spectrum_id"].encode(), encode_spectrum_json(record))


def arrow_message(batch: SpectrumBatch) -> Message:
    """All spectra of ``batch`` in one Arrow IPC stream message."""
    table = spectra_to_table(batch)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Message(None, sink.getvalue().to_pybytes(), ((CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE.encode()),))


class TopicReader:
    """Reads whole topics from the beginning without a consumer group (no group join, no commits).

    Parameters
    ----------
    consumer : KafkaConsumer
        A consumer without group id; it is assigned every partition of ``topics``.
    topics : iterable of str
    """

    def __init__(self, consumer: KafkaConsumer, topics: Iterable[str]):
        self.consumer = consumer
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(_partitions_of(consumer, topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        self.records: list = []

    def poll(self, timeout_ms: int = 200) -> list:
        """Read what has arrived; return the new records (also appended to :attr:`records`)."""
        new = [record for batch in self.consumer.poll(timeout_ms=timeout_ms).values() for record in batch]
        self.records.extend(new)
        return new

    def read_until(self, count: int, timeout_s: float) -> list:
        """Poll until :attr:`records` holds at least ``count`` records or ``timeout_s`` passes; return them all."""
        deadline = time.monotonic() + timeout_s
        while len(self.records) < count and time.monotonic() < deadline:
            self.poll()
        return self.records

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def _partitions_of(consumer: KafkaConsumer, topic: str, timeout_s: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return partitions
        time.sleep(0.1)
    raise UserError(f"topic {topic!r} has no partitions after {timeout_s:.0f} s; create it first (or check the name)")
