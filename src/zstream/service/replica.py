"""One service replica: consume → process → produce → flush → commit, until told to stop.

The loop is deliberately thin. Per batch it (1) swaps in a newly published basis
if one is waiting, (2) polls up to ``batch_size`` messages or ``max_wait_ms``,
(3) hands them to :func:`~zstream.service.processing.process_records`, (4)
produces one result or dead letter per input spectrum, flushes, and only then
commits the offsets (at-least-once), and (5) archives the confident spectra,
which may trigger a refit in the background.

A batch that cannot be delivered or committed is rewound and processed again
after an exponential backoff (:class:`~zstream.service.retry.BrokerRetry`);
after ``broker_retries`` failures in a row the replica gives up with
:class:`~zstream.service.retry.RetriesExhausted`, its offsets uncommitted. Every
iteration beats the liveness :class:`~zstream.service.health.Heartbeat`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from zstream.device import resolve_device
from zstream.io import Basis
from zstream.service import clients
from zstream.service.archive import Archive
from zstream.service.basis_sync import BasisFollower
from zstream.service.topics import create_topics
from zstream.service.config import ServiceConfig, kafka_client_options
from zstream.service.health import HealthServer, Heartbeat
from zstream.service.leadership import RefitLease
from zstream.service.membership import Membership
from zstream.service.metrics import ServiceMetrics
from zstream.service.outputs import dead_letter_message, result_message, result_records
from zstream.service.processing import InputRecord, ProcessedBatch, process_records
from zstream.service.refit import RefitOutcome, RefitWorker
from zstream.service.retry import BrokerRetry
from zstream.service.serving import ServingBasis
from zstream.service.message import Message
from zstream.service.versions import point_serving, publish_basis, publish_rejection

log = logging.getLogger("zstream.service")
_FLUSH_CHECK_S = 1.0


class Replica:
    """A service replica; :meth:`run` blocks until ``stop`` is set, then shuts down cleanly.

    Parameters
    ----------
    config : ServiceConfig
    """

    def __init__(self, config: ServiceConfig):
        self.config = config
        self.scan_config = config.scan_config()
        self.device = resolve_device(config.device)
        self.metrics = ServiceMetrics()
        self.archive = (
            Archive(config.archive, config.archive_retention_days, config.archive_max_spectra) if config.archive else None
        )
        self.serving: ServingBasis | None = None
        self.lease = RefitLease(config, self.metrics, self.archive) if self.archive is not None else None
        self.heartbeat = Heartbeat(config.liveness_timeout_s, on_beat=self.metrics.loop_heartbeat.set)
        self.health = HealthServer(self.metrics, self.readiness, self.heartbeat.status, config.metrics_host,
                                   config.metrics_port)
        self.retry = BrokerRetry(
            config.broker_retries, config.retry_backoff_ms / 1000.0, config.retry_backoff_max_ms / 1000.0,
            on_retry=lambda operation: self.metrics.broker_retries.labels(operation=operation).inc(),
            on_wait=self.heartbeat.beat,
        )
        self.batches_done = 0
        self._connected = False
        self.membership = Membership(on_change=self._assignment_changed)
        self._producer: KafkaProducer | None = None
        self._refit: RefitWorker | None = None

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): holding a basis, connected to Kafka, a member of the consumer group.

        A member the group gave no partition (more replicas than partitions) is ready but idle:
        it takes over partitions in the next rebalance without a restart.
        """
        if self.serving is None:
            return False, "no basis loaded yet"
        if not self._connected:
            return False, "not connected to Kafka"
        if not self.membership.joined:
            return False, f"not yet a member of consumer group {self.config.group_id!r}"
        held = len(self.membership.partitions)
        if not held:
            return True, f"ready but idle: no input partitions assigned, serving basis {self.serving.version}"
        return True, f"ready, serving basis {self.serving.version} on {held} input partition(s)"

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; the last batch is finished, flushed and committed before returning.

        Raises
        ------
        RetriesExhausted
            The broker stayed unusable for ``broker_retries`` retries; the batch in hand is not committed.
        """
        log.info("starting with settings %s", self.config.redacted())
        self.heartbeat.beat()
        self.health.start()
        if self.config.create_topics:
            options = {key: value for key, value in kafka_client_options(self.config).items() if key != "bootstrap_servers"}
            create_topics(
                self.config.bootstrap_servers,
                [self.config.input_topic, self.config.output_topic, self.config.dlq_topic, self.config.basis_topic],
                partitions=self.config.topic_partitions,
                compacted=[self.config.basis_topic],
                **options,
            )
            # one partition: its holder is the refit leader
            create_topics(self.config.bootstrap_servers, [self.config.refit_lease_topic], partitions=1, **options)
        self._producer = clients.producer(self.config)
        follower = BasisFollower(self.config, self.scan_config, self.device)
        consumer: KafkaConsumer | None = None
        try:
            self._swap_to(follower.initial(self._producer, self.config.basis))
            if self.archive is not None:
                self.archive.save_basis(self.serving.basis)
            follower.start()
            consumer = clients.input_consumer(self.config, self.membership)
            self._connected = True
            if self.lease is not None:
                self.lease.start()
            self._start_refits()
            log.info("consuming %s as group %s; metrics on port %d", self.config.input_topic,
                     self.config.group_id, self.health.port)
            while not stop.is_set():
                self.heartbeat.beat()
                pending = follower.take_pending()
                if pending is not None:
                    self._swap_to(pending)
                records = self._poll_batch(consumer, stop)
                self._connected = _connected_to_kafka(consumer)
                self._update_ready()
                if records:
                    self._handle(consumer, records, stop)
                elif self._connected:
                    self.retry.succeeded()
                else:
                    self.retry.failed("poll", KafkaConnectionError("no connection to any broker"), stop)
                self._update_lag(consumer)
        finally:
            self._connected = False  # a revocation while leaving must not report ready again
            self.metrics.ready.set(0)
            if self._refit is not None:
                self._refit.stop()
            if self.lease is not None:
                self.lease.stop()
            follower.stop()
            if consumer is not None:
                consumer.close(autocommit=False, timeout_ms=self.config.broker_timeout_ms)
            self._producer.close(timeout=self.config.broker_timeout_ms / 1000.0)
            self.health.stop()
            log.info("stopped after %d batches", self.batches_done)

    def current_basis(self) -> Basis:
        """The basis serving right now."""
        return self.serving.basis

    def promote(self, basis: Basis) -> None:
        """Save a refitted basis in the archive and make it the serving version of every replica."""
        if self.archive is not None:
            self.archive.save_basis(basis)
        publish_basis(self._producer, self.config.basis_topic, basis)
        point_serving(self._producer, self.config.basis_topic, basis.version,
                      previous=basis.meta.get("parent_version"), reason="promoted")

    def reject(self, candidate: Basis, outcome: RefitOutcome) -> None:
        """Publish a refused refit candidate's reasons and figures on the basis topic."""
        figures = {"heldout_chi2_serving": outcome.serving_chi2, "heldout_chi2_candidate": outcome.candidate_chi2,
                   **(outcome.gate.figures if outcome.gate is not None else {})}
        publish_rejection(self._producer, self.config.basis_topic, candidate, reasons=outcome.detail, figures=figures)

    @property
    def refit_busy(self) -> bool:
        """This replica is running a refit or has one due (always False where it does not refit)."""
        return self._refit is not None and self._refit.busy

    def _start_refits(self) -> None:
        if self.archive is None or not self.config.refit_enabled:
            log.info("background refits off (%s)", "no --archive" if self.archive is None else "--no-refit-enabled")
            return
        self._refit = RefitWorker(self.archive, self.config, self.device, self.metrics, self.current_basis, self.promote,
                                  is_leader=self.lease.is_leader, publish_rejection=self.reject)
        self._refit.start()

    def _swap_to(self, serving: ServingBasis) -> None:
        previous = self.serving
        self.serving = serving
        self.metrics.set_basis_version(serving.version)
        if previous is not None:
            self.metrics.basis_swaps.inc()
            log.info("basis swapped %s → %s", previous.version, serving.version)
        self._update_ready()

    def _assignment_changed(self, partitions: int) -> None:
        self.metrics.assigned_partitions.set(partitions)
        self._update_ready()

    def _update_ready(self) -> None:
        self.metrics.ready.set(1 if self.readiness()[0] else 0)

    def _poll_batch(self, consumer: KafkaConsumer, stop: threading.Event) -> list[InputRecord]:
        """Up to ``batch_size`` messages, waiting at most ``max_wait_ms`` for the batch to fill."""
        records: list[InputRecord] = []
        deadline = time.monotonic() + self.config.max_wait_ms / 1000.0
        while len(records) < self.config.batch_size and not stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            polled = consumer.poll(timeout_ms=remaining_ms, max_records=self.config.batch_size - len(records))
            for partition_records in polled.values():
                records.extend(partition_records)
        return records

    def _handle(self, consumer: KafkaConsumer, records: Sequence[InputRecord], stop: threading.Event) -> None:
        started = time.monotonic()
        for record in records:
            self.metrics.messages_consumed.labels(topic=record.topic).inc()
        processed = process_records(records, self.serving, max_message_bytes=self.config.max_message_bytes)
        self.metrics.scan_duration.observe(processed.scan_seconds)
        self.heartbeat.beat()
        processing_ms = (time.monotonic() - started) * 1000.0
        operation = "deliver"
        try:  # a send blocks on metadata and raises when the broker is gone: retried like a failed flush
            futures = [self._send(self.config.output_topic, result_message(record))
                       for record in result_records(processed, processing_ms)]
            futures += [self._send(self.config.dlq_topic, dead_letter_message(letter))
                        for letter in processed.dead_letters]
            self._flush(consumer)
            for future in futures:
                future.get(timeout=0)  # raises if any send failed: then nothing is committed
            operation = "commit"
            consumer.commit(_next_offsets(records), timeout_ms=self.config.broker_timeout_ms)
        except KafkaError as error:
            self._process_again(consumer, records, operation, error, stop)
            return
        self.retry.succeeded()
        flushed_at = time.time()
        for record in records:
            self.metrics.end_to_end_latency.observe(max(0.0, flushed_at - record.timestamp / 1000.0))
        self._count(processed)
        for stage, count in processed.isolated.items():
            self.metrics.isolated_records.labels(stage=stage).inc(count)
        if self.archive is not None:
            self.archive.append(processed.spectra, processed.results)
        self.metrics.sample_device_memory(self.device)
        self.metrics.batch_duration.observe(time.monotonic() - started)
        self.batches_done += 1

    def _flush(self, consumer: KafkaConsumer) -> None:
        """Wait up to ``broker_timeout_ms`` for every send, keeping /readyz and the heartbeat current.

        Raises
        ------
        KafkaTimeoutError
            Not everything was delivered in time.
        """
        deadline = time.monotonic() + self.config.broker_timeout_ms / 1000.0
        while True:
            try:
                self._producer.flush(timeout=max(0.0, min(_FLUSH_CHECK_S, deadline - time.monotonic())))
                return
            except KafkaTimeoutError:
                self._connected = _connected_to_kafka(consumer)
                self._update_ready()
                self.heartbeat.beat()
                if time.monotonic() >= deadline:
                    raise KafkaTimeoutError(f"results not delivered within {self.config.broker_timeout_ms} ms") from None

    def _process_again(self, consumer: KafkaConsumer, records: Sequence[InputRecord], operation: str,
                       error: KafkaError, stop: threading.Event) -> None:
        """A batch was not delivered or not committed: after a backoff, rewind so it is processed again.

        Results already delivered from it are repeated with the same key (at-least-once); partitions
        lost to a rebalance meanwhile are replayed by their new owner from the committed offset.

        Raises
        ------
        RetriesExhausted
            Too many failures in a row; the batch stays uncommitted.
        """
        self._connected = _connected_to_kafka(consumer)
        self._update_ready()
        self.retry.failed(operation, error, stop)
        assigned = consumer.assignment()
        for partition, offset in _first_offsets(records).items():
            if partition in assigned:
                consumer.seek(partition, offset)

    def _send(self, topic: str, message: Message):
        return self._producer.send(topic, key=message.key, value=message.value, headers=list(message.headers))

    def _count(self, processed: ProcessedBatch) -> None:
        self.metrics.results_produced.inc(processed.results.num_rows)
        for letter in processed.dead_letters:
            self.metrics.dlq_records.labels(reason=letter.reason.value).inc()
        for is_source, is_blend, delta_chi2 in zip(
            processed.results.column("is_source").to_pylist(),
            processed.results.column("is_blend").to_pylist(),
            processed.results.column("delta_chi2").to_pylist(),
        ):
            label = "blend" if is_blend else "source" if is_source else "false"
            self.metrics.classifications.labels(label=label).inc()
            if delta_chi2 is not None and delta_chi2 > 0:
                self.metrics.delta_chi2_log10.observe(math.log10(delta_chi2))

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        assignment = consumer.assignment()
        self.metrics.consumer_lag.clear()
        for partition in assignment:
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                position = consumer.position(partition, timeout_ms=1000)
            except KafkaError:
                continue
            if position is not None:
                self.metrics.consumer_lag.labels(topic=partition.topic, partition=str(partition.partition)).set(
                    max(0, highwater - position)
                )


def _connected_to_kafka(consumer: KafkaConsumer) -> bool:
    """True while the consumer holds an open broker connection (its ``connection-count`` metric)."""
    return consumer.metrics().get("consumer-metrics", {}).get("connection-count", 0) > 0


def _first_offsets(records: Sequence[InputRecord]) -> dict[TopicPartition, int]:
    """Per partition, the offset of the first record of the batch (where a retry starts)."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        offsets[partition] = min(offsets.get(partition, record.offset), record.offset)
    return offsets


def _next_offsets(records: Sequence[InputRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """Per partition, the offset after the last record of the batch (what a commit stores)."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        offsets[partition] = max(offsets.get(partition, -1), record.offset + 1)
    return {partition: OffsetAndMetadata(offset, "", -1) for partition, offset in offsets.items()}
