"""Fixtures for reliability tests: small bases, per-test settings, topic readers and service processes.

Scans are kept cheap with the coarse soak grid, k = 3 and 0 ≤ z ≤ 1.6;
consumer-group joins are kept short with a 6 s session timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zstream.bench.soak import serve_environment, starter_basis
from zstream.io import save_basis
from zstream.service.config import ServiceConfig

from reliability_helpers import ServiceProcess


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: a scenario with real service processes or broker restarts (runs in CI)")


@pytest.fixture(scope="session")
def basis_files(tmp_path_factory) -> tuple[Path, Path]:
    """Two saved k = 3 bases on the coarse grid, different versions (for hot swaps)."""
    folder = tmp_path_factory.mktemp("bases")
    paths = folder / "v1.parquet", folder / "v2.parquet"
    save_basis(starter_basis(seed=11, version="rel-v1"), paths[0])
    save_basis(starter_basis(seed=12, version="rel-v2"), paths[1])
    return paths


@pytest.fixture
def serve_process(tmp_path):
    """Factory: ``serve_process(config, name, **env)`` starts ``zstream serve`` with settings in ZSTREAM_* variables."""
    started: list[ServiceProcess] = []

    def start(config: ServiceConfig, name: str, **extra_env: str) -> ServiceProcess:
        env = serve_environment(config) | extra_env
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "zstream.cli", "serve"], stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=subprocess.STDOUT, env=env)
        service = ServiceProcess(process, log_path)
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(timeout=10)
