"""Ways to run a replica next to a driver (demo, benchmark): in a thread, or as a ``zstream serve`` process.

Both offer the same small surface — start, readiness, a metric value, the serving
version, stop — so the driver does not care which it has. The thread is cheap and
lets the demo show live internals; the process is what production runs, so
benchmarks use it to keep the driver's own work out of the replica's CPU and GIL.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from zstream.errors import UserError
from zstream.service.config import ServiceConfig, as_arguments
from zstream.service.metrics import BASIS_INFO
from zstream.testing.broker import free_loopback_port

_STOP_TIMEOUT_S = 60.0


class ReplicaThread:
    """A :class:`~zstream.service.replica.Replica` in a background thread of this process."""

    def __init__(self, config: ServiceConfig):
        from zstream.service.replica import Replica  # torch loads with the replica

        self.replica = Replica(config)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="zstream-replica", daemon=True)

    def _serve(self) -> None:
        try:
            self.replica.run(self._stop)
        except BaseException as error:  # re-raised by check() in the driving thread
            self._failure = error

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def check(self) -> None:
        """Raise the error the replica stopped with, if any."""
        if self._failure is not None:
            raise self._failure

    def ready(self) -> tuple[bool, str]:
        """(ready, reason), as ``/readyz`` reports it."""
        return self.replica.readiness()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of metric ``name`` matching ``labels``."""
        return self.replica.metrics.value(name, **labels)

    def serving_version(self) -> str:
        """The basis version being served ("-" before one is loaded)."""
        return self.replica.serving.version if self.replica.serving is not None else "-"

    @property
    def metrics_port(self) -> int:
        """Port of ``/metrics``."""
        return self.replica.health.port

    def stop(self) -> None:
        """Finish the batch in hand, commit, and wait for the thread to end."""
        self._stop.set()
        self._thread.join(_STOP_TIMEOUT_S)


class ReplicaProcess:
    """``zstream serve`` in a child process, watched over its HTTP endpoints.

    Parameters
    ----------
    config : ServiceConfig
        Passed as flags (secrets as environment variables); a free loopback port is
        chosen for the metrics server when ``metrics_port`` is 0.
    log_path : Path
        Receives the child's stdout and stderr.
    """

    def __init__(self, config: ServiceConfig, log_path: Path):
        port = config.metrics_port or free_loopback_port()
        self.config = dataclasses.replace(config, metrics_port=port, metrics_host="127.0.0.1")
        self.log_path = log_path
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def metrics_port(self) -> int:
        """Port of ``/metrics``."""
        return self.config.metrics_port

    def start(self) -> None:
        """Launch the process."""
        flags, env = as_arguments(self.config)
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "zstream.cli", "serve", *flags],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )

    def check(self) -> None:
        """Raise when the process has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise UserError(f"zstream serve exited with code {self._process.returncode}; see {self.log_path}")

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def ready(self) -> tuple[bool, str]:
        """(ready, reason) from ``/readyz``."""
        status, text = self._get("/readyz")
        return status == 200, text.strip()

    def _samples(self):
        status, text = self._get("/metrics")
        if status != 200:
            return []
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of metric ``name`` matching ``labels``, scraped now."""
        return sum(sample.value for sample in self._samples()
                   if sample.name == name and labels.items() <= sample.labels.items())

    def serving_version(self) -> str:
        """The version whose ``zstream_basis_info`` is 1 ("-" when none)."""
        serving = [sample.labels["version"] for sample in self._samples()
                   if sample.name == BASIS_INFO and sample.value == 1]
        return serving[0] if serving else "-"

    def stop(self) -> None:
        """SIGTERM (finish batch, commit), then SIGKILL if it does not exit in time."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()


def wait_ready(handle: ReplicaThread | ReplicaProcess, timeout_s: float = 120.0) -> None:
    """Block until ``handle`` reports ready.

    Raises
    ------
    UserError
        Not ready within ``timeout_s`` (with the last reason), or the replica died.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        handle.check()
        ready, reason = handle.ready()
        if ready:
            return
        if time.monotonic() > deadline:
            raise UserError(f"service not ready after {timeout_s:.0f} s: {reason}")
        time.sleep(0.2)
