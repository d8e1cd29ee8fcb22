"""HTTP endpoints of a replica: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (serving)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from zstream.service.metrics import ServiceMetrics


class HealthServer:
    """A small threaded HTTP server in a daemon thread.

    Parameters
    ----------
    metrics : ServiceMetrics
        Exposed on ``/metrics``.
    is_ready : callable returning (bool, str)
        Readiness and a one-line reason, for ``/readyz``.
    host, port : str, int
        Bind address; port 0 picks a free port (see :attr:`port`).
    """

    def __init__(self, metrics: ServiceMetrics, is_ready: Callable[[], tuple[bool, str]], host: str, port: int):
        handler = _handler_class(metrics, is_ready)
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


def _handler_class(metrics: ServiceMetrics, is_ready: Callable[[], tuple[bool, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                ready, reason = is_ready()
                self._reply(200 if ready else 503, f"{reason}\n".encode())
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
