"""HTTP probes of a replica's metrics/health server, shared by the test directories (``tests/`` is on
``sys.path`` through its conftest; a uniquely named module, as test directories share ``conftest``)."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on a replica's metrics/health server (503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
