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

import numpy as np
import pyarrow as pa
import pytest

from zstream.grid import LogGrid
from zstream.io import RESULT_SCHEMA, Basis, SpectrumBatch, save_basis
from zstream.redshift import train_basis
from zstream.service.broker import EmbeddedBroker
from zstream.service.config import ServiceConfig
from zstream.sim import SimConfig, simulate

TEST_SIM = SimConfig(pixel_size=5.0)
"""MUSE range with 5 Å pixels: a quarter of the pixels, so scans and fits stay quick."""
TEST_GRID = LogGrid(3.2, 3.97, 3e-4)
"""Rest grid about as fine as the test spectra's pixels."""
REPLICA_STOP_TIMEOUT_S = 60


def simulate_test(n: int, seed: int):
    """Simulated spectra (and truth) on the test pixel size."""
    return simulate(n, seed=seed, config=TEST_SIM)


def train_small_basis(seed: int, n: int, k: int, max_iter: int, version: str) -> Basis:
    """A quick basis from simulated sources at their true z (a stand-in for a production basis)."""
    batch, _ = simulate_test(n, seed)
    return train_basis(batch, k, TEST_GRID, max_iter=max_iter, sequential_iter=max(1, max_iter // 4), seed=seed,
                       device="cpu", progress=False, version=version)


def sources_only(n: int, seed: int) -> SpectrumBatch:
    """The true sources of a simulated set, with their redshifts (a labelled training set)."""
    batch, _ = simulate_test(n, seed)
    keep = np.flatnonzero(~np.isnan(batch.z))
    return SpectrumBatch([batch.spectrum_id[i] for i in keep], [batch.wavelength[i] for i in keep],
                         [batch.flux[i] for i in keep], [batch.ivar[i] for i in keep], z=batch.z[keep])


def results_at_truth(batch: SpectrumBatch, *, is_source: list[bool] | None = None, warnings: list[int] | None = None) -> pa.Table:
    """Result rows for ``batch`` at its known z (what a confident scan of the training set would say)."""
    n = len(batch)
    return pa.Table.from_pydict({
        "spectrum_id": batch.spectrum_id, "z": batch.z, "z_err": [1e-4] * n, "chi2_min": [1.0] * n,
        "delta_chi2": [0.5] * n, "robustness": [10.0] * n,
        "is_source": is_source if is_source is not None else [True] * n, "is_blend": [False] * n,
        "blend_score": [0.0] * n, "z_blend": [None] * n, "coefficients": [[1.0, 0.0, 0.0]] * n,
        "basis_version": ["v-test"] * n, "warnings": warnings if warnings is not None else [0] * n,
        "n_pixels_used": [100] * n,
    }, schema=RESULT_SCHEMA)


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
