"""A message to produce, and producing a stream of them: what the replica, replay and the test tools send."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaProducer

from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE


@dataclass(frozen=True)
class Message:
    """One message to produce."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ((CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.encode()),)


def send(
    producer: KafkaProducer,
    topic: str,
    messages: Iterable[Message],
    *,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Produce ``messages`` to ``topic``, paced at ``rate`` messages/s when given; flush; return the count.

    Parameters
    ----------
    producer : KafkaProducer
    topic : str
    messages : iterable of Message
    rate : float, optional
        Target messages per second (``None`` = as fast as possible).
    on_sent : callable, optional
        Called with the running count after each message (progress displays).
    stop : threading.Event, optional
        Stop early (after flushing what was sent) once set.
    """
    started = time.monotonic()
    count = 0
    for count, message in enumerate(messages, start=1):
        if stop is not None and stop.is_set():
            count -= 1
            break
        if rate:
            delay = started + (count - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.send(topic, key=message.key, value=message.value, headers=list(message.headers))
        if on_sent is not None:
            on_sent(count)
    producer.flush()
    return count
