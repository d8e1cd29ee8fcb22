"""kafka-python clients built from a :class:`ServiceConfig` (one place for client options)."""

from __future__ import annotations

import os
import socket

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer

from zstream.service.config import ServiceConfig, kafka_client_options

CONTENT_TYPE_HEADER = "content-type"
JSON_CONTENT_TYPE = "application/json"
ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
_FETCH_FLOOR_BYTES = 50 * 1024 * 1024
_PRODUCER_HEADROOM_BYTES = 1024 * 1024


def client_id(role: str) -> str:
    """A client id that names the host, process and role, for broker-side diagnostics."""
    return f"zstream-{role}-{socket.gethostname()}-{os.getpid()}"


def input_consumer(config: ServiceConfig, listener: ConsumerRebalanceListener | None = None) -> KafkaConsumer:
    """Group consumer of the input topic; offsets are committed by the service, never automatically.

    ``listener`` hears every rebalance (eager protocol: each assignment is the whole set held).
    """
    consumer = KafkaConsumer(
        group_id=config.group_id,
        client_id=client_id("consumer"),
        enable_auto_commit=False,
        auto_offset_reset=config.auto_offset_reset,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        max_partition_fetch_bytes=max(2 * config.max_message_bytes, 1024 * 1024),
        fetch_max_bytes=max(4 * config.max_message_bytes, _FETCH_FLOOR_BYTES),
        **kafka_client_options(config),
    )
    consumer.subscribe([config.input_topic], listener=listener)
    return consumer


def producer(config: ServiceConfig) -> KafkaProducer:
    """Producer for results, dead letters and bases; waits for all in-sync replicas."""
    return KafkaProducer(
        client_id=client_id("producer"),
        acks="all",
        linger_ms=5,
        max_request_size=config.max_message_bytes + _PRODUCER_HEADROOM_BYTES,
        **kafka_client_options(config),
    )


def plain_consumer(config: ServiceConfig, **options) -> KafkaConsumer:
    """Consumer outside any group (manual assignment): basis topic, replays, tests."""
    return KafkaConsumer(
        client_id=client_id("reader"),
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=max(4 * config.max_message_bytes, _FETCH_FLOOR_BYTES),
        max_partition_fetch_bytes=max(2 * config.max_message_bytes, 1024 * 1024),
        **kafka_client_options(config),
        **options,
    )


def header(headers: list[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """Value of the first header called ``name`` (case-insensitive), or ``None``."""
    for key, value in headers or ():
        if key.lower() == name:
            return value
    return None
