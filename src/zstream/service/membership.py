"""What a consumer-group member currently owns, as told by the group's rebalance callbacks.

``consumer.assignment()`` is empty both before the first join and after a join
that handed this member nothing (more replicas than partitions); only the
rebalance callbacks tell the two apart. The input consumer uses this for
readiness (joined, possibly idle) and the refit lease for leadership.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from kafka import ConsumerRebalanceListener, TopicPartition


class Membership(ConsumerRebalanceListener):
    """Rebalance listener remembering whether the member joined and which partitions it holds.

    Parameters
    ----------
    on_change : callable taking the number of partitions held, optional
        Called after every assignment or revocation (e.g. to set a gauge).
    """

    def __init__(self, on_change: Callable[[int], None] | None = None) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._partitions: frozenset[TopicPartition] = frozenset()
        self._joined = threading.Event()

    @property
    def joined(self) -> bool:
        """True once the group has handed this member an assignment (possibly empty)."""
        return self._joined.is_set()

    @property
    def partitions(self) -> frozenset[TopicPartition]:
        """The partitions held now (empty while revoked or idle)."""
        with self._lock:
            return self._partitions

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:  # noqa: D102 (listener API)
        self._set(frozenset())

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:  # noqa: D102 (listener API)
        self._set(frozenset(assigned))
        self._joined.set()

    def _set(self, partitions: frozenset[TopicPartition]) -> None:
        with self._lock:
            self._partitions = partitions
        if self._on_change is not None:
            self._on_change(len(partitions))
