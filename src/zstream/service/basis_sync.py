"""Keeps a replica's serving basis in step with the basis topic (hot swap between batches).

A background thread follows the topic; when the ``serving`` pointer moves it
decodes the new basis and builds its scanner off the hot path, then leaves it in
a one-slot mailbox. The consumer loop takes it between two batches, so no batch
is interrupted and no message waits for the scanner precomputation.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
from kafka import KafkaProducer

from zstream.errors import UserError
from zstream.io import load_basis
from zstream.redshift import ScanConfig
from zstream.service import clients
from zstream.service.config import ServiceConfig
from zstream.service.serving import ServingBasis, build_serving
from zstream.service.versions import BasisTopicReader, point_serving, publish_basis

log = logging.getLogger("zstream.service")
_FOLLOW_POLL_MS = 500


class BasisFollower:
    """Follows the basis topic and prepares the next :class:`ServingBasis`.

    Parameters
    ----------
    config : ServiceConfig
    scan_config : ScanConfig
    device : torch.device
    """

    def __init__(self, config: ServiceConfig, scan_config: ScanConfig, device: torch.device):
        self.config = config
        self.scan_config = scan_config
        self.device = device
        self._reader = BasisTopicReader(clients.plain_consumer(config), config.basis_topic)
        self._pending: ServingBasis | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="zstream-basis", daemon=True)

    def initial(self, producer: KafkaProducer, seed_basis: Path | None) -> ServingBasis:
        """The basis to start with: the topic's serving version, else ``seed_basis`` (then published).

        Raises
        ------
        UserError
            Neither the topic nor ``seed_basis`` provides a basis.
        """
        log_state = self._reader.catch_up()
        if log_state.serving_version is None:
            if seed_basis is None:
                raise UserError(
                    f"no basis: topic {self.config.basis_topic!r} holds none and --basis was not given; "
                    "pass --basis FILE (e.g. from 'zstream fit')"
                )
            basis = load_basis(seed_basis)
            publish_basis(producer, self.config.basis_topic, basis)
            point_serving(producer, self.config.basis_topic, basis.version, previous=None, reason="initial")
            log.info("published initial basis %s from %s", basis.version, seed_basis)
            log_state = self._reader.catch_up()
        return build_serving(log_state.basis(log_state.serving_version), self.scan_config, self.device)

    def start(self) -> None:
        """Begin following the topic in the background."""
        self._thread.start()

    def take_pending(self) -> ServingBasis | None:
        """The newly prepared basis, once (None when nothing changed)."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._reader.close()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._reader.poll(timeout_ms=_FOLLOW_POLL_MS):
                    continue
                version = self._reader.log.serving_version
                prepared = build_serving(self._reader.log.basis(version), self.scan_config, self.device)
            except Exception:  # keep following: the current basis stays in service
                log.exception("could not prepare the basis named on topic %s", self.config.basis_topic)
                continue
            with self._lock:
                self._pending = prepared
            log.info("basis %s prepared; swapping in before the next batch", version)
