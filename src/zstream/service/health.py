"""HTTP endpoints of a replica: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (serving).

Alive means the consume loop is making progress: it beats a :class:`Heartbeat`
on every iteration (and while it waits on the broker within its bounds), and
``/healthz`` answers 503 once no beat came for longer than the liveness timeout,
so an orchestrator restarts a stuck replica.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from zstream.service.metrics import ServiceMetrics

Status = Callable[[], tuple[bool, str]]
"""A check: (passing, one-line reason)."""


class Heartbeat:
    """When the consume loop last made progress; older than ``timeout_s`` means it is stuck.

    Parameters
    ----------
    timeout_s : float
        Longest time without a beat that still counts as alive.
    on_beat : callable, optional
        Called with the Unix time of each beat (the heartbeat gauge).
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, timeout_s: float, on_beat: Callable[[float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._on_beat = on_beat
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        """The loop made progress now."""
        self._last = self._clock()
        if self._on_beat is not None:
            self._on_beat(time.time())

    def status(self) -> tuple[bool, str]:
        """(alive, reason) for ``/healthz``."""
        age = self._clock() - self._last
        if age > self.timeout_s:
            return False, f"consume loop stuck: no progress for {age:.0f} s (liveness timeout {self.timeout_s:g} s)"
        return True, f"alive: consume loop progressed {age:.1f} s ago"


class HealthServer:
    """A small threaded HTTP server in a daemon thread.

    Parameters
    ----------
    metrics : ServiceMetrics
        Exposed on ``/metrics``.
    is_ready : callable returning (bool, str)
        Readiness and a one-line reason, for ``/readyz``.
    is_alive : callable returning (bool, str)
        Liveness and a one-line reason, for ``/healthz`` (e.g. :meth:`Heartbeat.status`).
    host, port : str, int
        Bind address; port 0 picks a free port (see :attr:`port`).
    """

    def __init__(self, metrics: ServiceMetrics, is_ready: Status, is_alive: Status, host: str, port: int):
        handler = _handler_class(metrics, is_ready, is_alive)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="zstream-health", daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    def start(self) -> "HealthServer":
        """Begin serving requests."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def _handler_class(metrics: ServiceMetrics, is_ready: Status, is_alive: Status) -> type[BaseHTTPRequestHandler]:
    checks = {"/healthz": is_alive, "/readyz": is_ready}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path in checks:
                passing, reason = checks[path]()
                self._reply(200 if passing else 503, f"{reason}\n".encode())
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # scrapes are not worth a log line each
            pass

    return Handler
