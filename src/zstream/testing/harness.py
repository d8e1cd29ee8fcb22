"""A whole stream on one machine: one replica, a producer and a results reader around a broker.

The demo and ``zstream bench stream`` drive the real service through this: spectra
are produced at a set rate, the replica (a thread or a ``zstream serve`` process,
see :mod:`zstream.testing.handles`) serves them over the broker, and the reader
records when each result arrives, so end-to-end latency is measured the way a
downstream consumer sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

import numpy as np
import orjson
from kafka import KafkaConsumer

from zstream.service import clients
from zstream.service.config import ServiceConfig
from zstream.service.message import Message, send
from zstream.service.topics import create_topics
from zstream.testing.handles import ReplicaProcess, ReplicaThread, wait_ready
from zstream.testing.traffic import TopicReader

_STOP_TIMEOUT_S = 60.0


class StreamHarness:
    """Feeds and watches one replica of ``config``; a context manager that stops everything on exit.

    Parameters
    ----------
    config : ServiceConfig
        Service settings (topics, broker address, basis...); topics are created if missing.
    replica : ReplicaThread or ReplicaProcess
        How the replica runs; started on entering the context.
    partitions : int
        Partitions of the input topic.
    """

    def __init__(self, config: ServiceConfig, replica: ReplicaThread | ReplicaProcess, partitions: int = 2):
        self.config = config
        self.replica = replica
        self.partitions = partitions
        self.sent_at: dict[bytes, float] = {}
        self.arrived_at: dict[bytes, float] = {}
        self.results: list[dict] = []
        self.dead_letters: list = []
        self.sent = 0
        self.sending_done = threading.Event()
        self._stop = threading.Event()
        self._producer_thread: threading.Thread | None = None
        self._reader: TopicReader | None = None
        self._producer = None

    def __enter__(self) -> "StreamHarness":
        create_topics(
            self.config.bootstrap_servers,
            [self.config.input_topic, self.config.output_topic, self.config.dlq_topic, self.config.basis_topic],
            partitions=self.partitions, compacted=[self.config.basis_topic],
        )
        self._producer = clients.producer(self.config)
        self._reader = TopicReader(
            KafkaConsumer(bootstrap_servers=self.config.bootstrap_servers, group_id=None),
            [self.config.output_topic, self.config.dlq_topic],
        )
        self.replica.start()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until the replica is ready (basis loaded, partitions assigned)."""
        wait_ready(self.replica, timeout_s)

    def start_sending(self, messages: Sequence[Message], rate: float | None) -> None:
        """Produce ``messages`` in a background thread at ``rate`` messages/s (None = flat out)."""

        def record(count: int) -> None:
            self.sent = count
            self.sent_at[messages[count - 1].key] = time.time()

        def produce() -> None:
            try:
                send(self._producer, self.config.input_topic, messages, rate=rate, on_sent=record, stop=self._stop)
            finally:
                self.sending_done.set()

        self._producer_thread = threading.Thread(target=produce, name="zstream-producer", daemon=True)
        self._producer_thread.start()

    def poll(self, timeout_ms: int = 200) -> None:
        """Read newly arrived results and dead letters, stamping their arrival time."""
        self.replica.check()
        for record in self._reader.poll(timeout_ms=timeout_ms):
            if record.topic == self.config.output_topic:
                self.arrived_at.setdefault(record.key, time.time())
                self.results.append(orjson.loads(record.value))
            else:
                self.dead_letters.append(record)

    @property
    def done(self) -> int:
        """Inputs accounted for so far (results plus dead letters)."""
        return len(self.results) + len(self.dead_letters)

    def latencies(self) -> np.ndarray:
        """End-to-end seconds from send to result arrival, one per result received so far."""
        return np.array([self.arrived_at[key] - self.sent_at[key] for key in self.arrived_at if key in self.sent_at])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._producer_thread is not None:
            self._producer_thread.join(_STOP_TIMEOUT_S)
        self.replica.stop()
        if self._reader is not None:
            self._reader.close()
        if self._producer is not None:
            self._producer.close(timeout=10)
