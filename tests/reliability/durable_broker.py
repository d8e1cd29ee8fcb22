"""A tansu broker whose log survives a restart: tansu's ``s3://`` storage on a loopback S3 (moto) server.

The embedded broker keeps its log in memory, so restarting it would lose every
topic; the broker-restart test needs the log to outlive the broker process.
This tansu build has no PostgreSQL or SQLite engine, but its S3 engine works
against moto's S3 server, which runs on loopback with no setup.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from zstream.testing.broker import LOOPBACK, EmbeddedBroker, free_loopback_port

BUCKET = "tansu"


def _moto_server_command() -> list[str]:
    """The moto S3 server entry point, or skip when moto[server] is not installed."""
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    if shutil.which("moto_server"):
        return [shutil.which("moto_server")]
    pytest.skip("durable broker needs an S3 server: install 'moto[server]' (pip install -e '.[test]')")


def _create_bucket(endpoint: str, timeout_s: float = 30.0) -> None:
    """Create the bucket once the server answers (moto accepts unsigned requests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"), timeout=5).close()
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def durable_broker(log_dir: Path) -> Iterator[EmbeddedBroker]:
    """An :class:`EmbeddedBroker` on ``s3://tansu/`` served by a moto S3 server; both stopped on exit.

    The broker may be stopped and started again (same port, same log) inside the block.
    """
    port = free_loopback_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    with open(log_dir / "moto.log", "wb") as moto_log:
        moto = subprocess.Popen([*_moto_server_command(), "-H", LOOPBACK, "-p", str(port)],
                                stdout=moto_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _create_bucket(endpoint)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1",
                                "AWS_ACCESS_KEY_ID": "loopback", "AWS_SECRET_ACCESS_KEY": "loopback"}.items():
                patch.setenv(name, value)
            broker = EmbeddedBroker(log_path=log_dir / "tansu-durable.log", storage_engine=f"s3://{BUCKET}/")
            with broker:
                yield broker
    finally:
        moto.terminate()
        moto.wait(timeout=10)
