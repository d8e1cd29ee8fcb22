"""Broker retries back off exponentially up to a cap and give up after the bound; the liveness heartbeat
turns /healthz to 503 once the loop has been silent for longer than the liveness timeout."""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

from zstream.service.health import Heartbeat
from zstream.service.retry import BrokerRetry, RetriesExhausted


def _retry(retries: int, operations: list[str], beats: list[None]) -> BrokerRetry:
    return BrokerRetry(retries, 0.5, 4.0, on_retry=operations.append, on_wait=lambda: beats.append(None))


def test_backoff_doubles_up_to_its_cap():
    retry = _retry(8, [], [])
    assert [retry.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_failures_in_a_row_are_counted_retried_and_then_given_up():
    operations, beats = [], []
    retry, stop = _retry(2, operations, beats), threading.Event()
    stop.set()  # the waits end at once; what is counted is the same
    retry.failed("deliver", KafkaTimeoutError("slow"), stop)
    retry.failed("commit", KafkaTimeoutError("slow"), stop)
    with pytest.raises(RetriesExhausted, match="commit failed 3 times in a row .*giving up after 2 retries"):
        retry.failed("commit", KafkaTimeoutError("slow"), stop)
    assert operations == ["deliver", "commit"]
    assert beats, "waiting out a backoff beats the heartbeat"


def test_a_success_starts_the_count_again():
    retry, stop = _retry(1, [], []), threading.Event()
    stop.set()
    retry.failed("poll", KafkaTimeoutError(), stop)
    retry.succeeded()
    retry.failed("poll", KafkaTimeoutError(), stop)
    assert retry.failures == 1


def test_heartbeat_goes_stale_after_the_liveness_timeout():
    now = [100.0]
    stamps: list[float] = []
    heartbeat = Heartbeat(30.0, on_beat=stamps.append, clock=lambda: now[0])
    now[0] += 29.0
    assert heartbeat.status()[0]
    now[0] += 2.0
    alive, reason = heartbeat.status()
    assert not alive and "no progress for 31 s" in reason
    heartbeat.beat()
    assert heartbeat.status()[0] and len(stamps) == 1
