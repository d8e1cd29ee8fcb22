"""One refit leader per consumer group, elected by Kafka's own group membership.

Every replica with an archive joins a second consumer group, ``<group_id>.refit-lease``,
on a topic with a single partition (``refit_lease_topic``). The group coordinator gives
that partition to exactly one member: the leader. It alone runs refits and archive
retention; every replica keeps following the basis topic. When the leader leaves
(SIGTERM: at once) or dies (SIGKILL: after ``session_timeout_ms`` without heartbeats),
the coordinator hands the partition to another member at the next rebalance, so a new
leader refits within about one session timeout. Nothing is ever written to or read
from the lease topic: holding its partition is the lease.

A member cut off from the broker believes it still leads until its own heartbeats
fail (at most a session timeout), so two leaders can briefly overlap; refits are
idempotent to that (a promotion publishes a complete basis and moves the pointer), and
the RefitWorker asks :meth:`RefitLease.is_leader` again just before promoting.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from zstream.service import clients
from zstream.service.archive import Archive
from zstream.service.config import ServiceConfig, kafka_client_options
from zstream.service.membership import Membership
from zstream.service.metrics import ServiceMetrics

log = logging.getLogger("zstream.service")
_POLL_MS = 500
_RETENTION_INTERVAL_S = 60.0


def lease_group(config: ServiceConfig) -> str:
    """The consumer group whose single-partition assignment is the refit lease."""
    return f"{config.group_id}.refit-lease"


class RefitLease:
    """Takes part in the lease group in a background thread; the holder enforces archive retention.

    Parameters
    ----------
    config : ServiceConfig
    metrics : ServiceMetrics
        ``zstream_refit_leader`` follows the lease.
    archive : Archive, optional
        Retention is enforced on it while this replica leads.
    """

    def __init__(self, config: ServiceConfig, metrics: ServiceMetrics, archive: Archive | None = None):
        self.config = config
        self.archive = archive
        self._metrics = metrics
        self._membership = Membership(on_change=self._changed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="zstream-lease", daemon=True)
        self._consumer: KafkaConsumer | None = None

    def start(self) -> None:
        """Join the lease group and keep polling it (membership needs polls and heartbeats)."""
        self._consumer = KafkaConsumer(
            group_id=lease_group(self.config),
            client_id=clients.client_id("lease"),
            enable_auto_commit=False,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            **kafka_client_options(self.config),
        )
        self._consumer.subscribe([self.config.refit_lease_topic], listener=self._membership)
        self._thread.start()

    def is_leader(self) -> bool:
        """True while this replica holds the lease partition."""
        return bool(self._membership.partitions) and not self._stop.is_set()

    def stop(self) -> None:
        """Leave the lease group now, so another replica takes over without waiting for a session timeout."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._consumer is not None:
            self._consumer.close(autocommit=False, timeout_ms=self.config.broker_timeout_ms)
        self._metrics.refit_leader.set(0)

    def _changed(self, partitions: int) -> None:
        self._metrics.refit_leader.set(1 if partitions else 0)
        log.info("refit leadership %s (group %s)", "acquired" if partitions else "released", lease_group(self.config))

    def _hold(self) -> None:
        last_retention = 0.0
        while not self._stop.is_set():
            try:
                self._consumer.poll(timeout_ms=_POLL_MS)
            except KafkaError as error:  # the input loop reports broker trouble; keep trying here
                log.debug("lease poll failed: %s", error)
                self._stop.wait(_POLL_MS / 1000.0)
                continue
            if self.archive is not None and self.is_leader() and time.monotonic() - last_retention >= _RETENTION_INTERVAL_S:
                last_retention = time.monotonic()
                removed = self.archive.enforce_retention()
                if removed:
                    log.info("archive retention removed %d files", removed)
