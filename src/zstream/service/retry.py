"""Bounded retries of broker operations: exponential backoff, a count in metrics, then give up.

A replica retries a batch whose results could not be delivered or whose offsets
could not be committed, and keeps polling while it has lost the broker. Each
failure in a row waits twice as long as the one before (up to a cap); once more
failures in a row than allowed have happened the replica gives up with
:class:`RetriesExhausted`, leaving the batch's offsets uncommitted so that the
next owner of its partitions processes it again. Any success resets the count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka.errors import KafkaError

log = logging.getLogger("zstream.service")

_WAIT_STEP_S = 1.0


class RetriesExhausted(KafkaError):
    """More broker operations failed in a row than ``broker_retries`` allows; the replica must exit."""


def describe(error: BaseException) -> str:
    """``Type: message`` once (kafka-python's errors already start their text with their type)."""
    text, name = str(error), type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


class BrokerRetry:
    """Counts failed broker operations in a row and waits an exponential backoff after each.

    Parameters
    ----------
    retries : int
        Failures in a row tolerated; the next one raises :class:`RetriesExhausted`.
    backoff_s, backoff_max_s : float
        Wait after the first failure, doubled after each further one, capped at ``backoff_max_s``.
    on_retry : callable
        Called with the operation name before each wait (the retry metric).
    on_wait : callable
        Called about once a second while waiting (the liveness heartbeat: waiting out a
        backoff is progress, not a stuck loop).
    """

    def __init__(
        self,
        retries: int,
        backoff_s: float,
        backoff_max_s: float,
        on_retry: Callable[[str], None],
        on_wait: Callable[[], None],
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._on_retry = on_retry
        self._on_wait = on_wait
        self.failures = 0

    def succeeded(self) -> None:
        """A broker operation worked: the next failure starts from the first backoff again."""
        self.failures = 0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row: ``backoff_s`` doubled each time, capped."""
        return min(self.backoff_s * 2.0 ** (failures - 1), self.backoff_max_s)

    def failed(self, operation: str, error: BaseException, stop: threading.Event) -> None:
        """Record a failure of ``operation``; wait its backoff (cut short by ``stop``), or give up.

        Raises
        ------
        RetriesExhausted
            This failure is one more than ``retries`` in a row.
        """
        self.failures += 1
        if self.failures > self.retries:
            raise RetriesExhausted(
                f"{operation} failed {self.failures} times in a row (last: {describe(error)}); "
                f"giving up after {self.retries} retries"
            )
        delay = self.backoff(self.failures)
        log.warning("%s failed (%s); retry %d of %d in %.1f s", operation, describe(error), self.failures,
                    self.retries, delay)
        self._on_retry(operation)
        deadline = time.monotonic() + delay
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            self._on_wait()
            stop.wait(min(_WAIT_STEP_S, remaining))
        self._on_wait()
