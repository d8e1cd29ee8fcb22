"""Fixtures for service tests: a small fast basis, per-test topic names and a replica runner.

Scans are kept cheap with coarse pixels and rest grid, k = 3 and 0 ≤ z ≤ 1.6; consumer-group
joins are kept short with a 6 s session timeout.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from zstream.io import save_basis
from zstream.service.config import ServiceConfig
from zstream.testing.broker import EmbeddedBroker

from service_builders import REPLICA_STOP_TIMEOUT_S, train_small_basis


@pytest.fixture(scope="session")
def basis_path(tmp_path_factory) -> Path:
    """A saved k = 3 basis on the coarse test grid."""
    path = tmp_path_factory.mktemp("basis") / "basis.parquet"
    save_basis(train_small_basis(seed=11, n=150, k=3, max_iter=60, version="test-v1"), path)
    return path


@pytest.fixture
def service_config(kafka_broker: EmbeddedBroker, basis_path: Path, tmp_path: Path) -> ServiceConfig:
    """Settings for one test: its own topics and group on the shared broker, fast scans, free metrics port."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return ServiceConfig(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        input_topic=f"{prefix}.spectra",
        output_topic=f"{prefix}.results",
        dlq_topic=f"{prefix}.dlq",
        basis_topic=f"{prefix}.basis",
        group_id=f"{prefix}.group",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        topic_partitions=2,
        basis=basis_path,
        archive=tmp_path / "archive",
        refit_enabled=False,
        z_min=0.0,
        z_max=1.6,
        z_step=0.002,
        batch_size=16,
        max_wait_ms=300,
        device="cpu",
        metrics_host="127.0.0.1",
        metrics_port=0,
        max_message_bytes=600_000,
    )


@pytest.fixture
def running():
    """Context manager factory: ``with running(replica): ...`` runs a replica in a thread."""
    return _running


@contextmanager
def _running(replica) -> Iterator[threading.Thread]:
    """Run ``replica`` in a thread; stop it (finish batch, commit) and check it ended on exit."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            replica.run(stop)
        except BaseException as error:  # surfaced in the test thread below
            failure.append(error)

    thread = threading.Thread(target=target, name="replica-under-test")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(REPLICA_STOP_TIMEOUT_S)
    assert not thread.is_alive(), "replica did not stop in time"
    if failure:
        raise failure[0]
