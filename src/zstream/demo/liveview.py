"""A one-screen live view of a running stream: redrawn on a terminal, periodic lines otherwise."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from zstream.testing.harness import StreamHarness

_RATE_WINDOW_S = 10.0
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one moment."""

    elapsed_s: float
    sent: int
    results: int
    dead_letters: int
    rate: float
    lag: float
    latency_p50: float
    latency_p99: float
    sources: int
    false: int
    blends: int
    basis_version: str
    swaps: int
    refits: dict[str, int]


class LiveView:
    """Shows :class:`Snapshot` s of a :class:`StreamHarness` as they come.

    Parameters
    ----------
    harness : StreamHarness
    out : text stream
        Usually ``sys.stdout``.
    title : str
        First line of the screen.
    line_interval_s : float
        Seconds between progress lines when ``out`` is not a terminal.
    """

    def __init__(self, harness: StreamHarness, out: TextIO, title: str, line_interval_s: float = 10.0):
        self.harness = harness
        self.out = out
        self.title = title
        self.is_tty = out.isatty()
        self.line_interval_s = line_interval_s
        self.started = time.monotonic()
        self._last_line = -line_interval_s
        self._history: collections.deque[tuple[float, int]] = collections.deque()

    def snapshot(self) -> Snapshot:
        """Current figures, from the replica's metrics and the results read so far."""
        now = time.monotonic()
        harness, replica = self.harness, self.harness.replica
        self._history.append((now, harness.done))
        while now - self._history[0][0] > _RATE_WINDOW_S:
            self._history.popleft()
        span = now - self._history[0][0]
        latencies = harness.latencies()
        return Snapshot(
            elapsed_s=now - self.started,
            sent=harness.sent,
            results=len(harness.results),
            dead_letters=len(harness.dead_letters),
            rate=(harness.done - self._history[0][1]) / span if span > 0 else 0.0,
            lag=replica.metric("zstream_consumer_lag"),
            latency_p50=float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
            latency_p99=float(np.percentile(latencies, 99)) if latencies.size else float("nan"),
            sources=int(replica.metric("zstream_classifications_total", label="source")),
            false=int(replica.metric("zstream_classifications_total", label="false")),
            blends=int(replica.metric("zstream_classifications_total", label="blend")),
            basis_version=replica.serving_version(),
            swaps=int(replica.metric("zstream_basis_swaps_total")),
            refits={outcome: int(replica.metric("zstream_refits_total", outcome=outcome))
                    for outcome in ("promoted", "rejected", "failed")},
        )

    def update(self, force: bool = False) -> Snapshot:
        """Redraw (terminal) or print a line when one is due (pipe); return the snapshot shown."""
        snap = self.snapshot()
        if self.is_tty:
            self.out.write(_CLEAR_SCREEN + "\n".join([self.title, *screen(snap)]) + "\n")
            self.out.flush()
        elif force or snap.elapsed_s - self._last_line >= self.line_interval_s:
            self._last_line = snap.elapsed_s
            self.out.write(line(snap) + "\n")
            self.out.flush()
        return snap


def screen(snap: Snapshot) -> list[str]:
    """The lines of the terminal view."""
    refits = ", ".join(f"{name} {count}" for name, count in snap.refits.items())
    return [
        f"elapsed     {snap.elapsed_s:6.0f} s",
        f"sent        {snap.sent:6d}    results {snap.results:6d}    dead letters {snap.dead_letters:4d}",
        f"rate        {snap.rate:6.1f} /s  (last {_RATE_WINDOW_S:.0f} s)    consumer lag {snap.lag:5.0f} messages",
        f"latency     p50 {snap.latency_p50:5.2f} s    p99 {snap.latency_p99:5.2f} s  (send → result)",
        f"decisions   sources {snap.sources:5d}    false {snap.false:5d}    blends {snap.blends:5d}",
        f"basis       {snap.basis_version}   ({snap.swaps} hot swaps)",
        f"refits      {refits}",
    ]


def line(snap: Snapshot) -> str:
    """The one-line form, for logs and pipes."""
    return (
        f"[{snap.elapsed_s:5.0f} s] sent {snap.sent} results {snap.results} dlq {snap.dead_letters} "
        f"rate {snap.rate:.1f}/s lag {snap.lag:.0f} p50 {snap.latency_p50:.2f}s p99 {snap.latency_p99:.2f}s "
        f"src/false/blend {snap.sources}/{snap.false}/{snap.blends} basis {snap.basis_version} "
        f"swaps {snap.swaps} refits {snap.refits['promoted']}/{snap.refits['rejected']}/{snap.refits['failed']}"
    )
