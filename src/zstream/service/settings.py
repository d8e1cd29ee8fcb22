"""What values a setting allows: numeric ranges, choice sets and name patterns.

Each :class:`~zstream.service.config.ServiceConfig` field carries one of these in
its metadata; the loader checks every value against it, whichever source it came
from, and the reference table prints :meth:`describe` so the docs and the check
cannot drift apart. Hand-written rather than pydantic-settings: the loader already
derives flags, environment names, the TOML reader, the reference table and
``as_arguments`` from the dataclass fields, and pydantic would replace none of
that, only the few lines below (while adding two dependencies).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol


class Allowed(Protocol):
    """A set of allowed values: ``allows(value)`` and a phrase for messages and docs."""

    def allows(self, value: Any) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Range:
    """Numbers between ``low`` and ``high`` (``None``: unbounded); ``open_low`` excludes ``low`` itself."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def allows(self, value: Any) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.open_low else '['}{_number(self.low)}, "
                    f"{_number(self.high)}{')' if self.open_high else ']'}")
        if self.low is not None:
            return f"{'>' if self.open_low else '≥'} {_number(self.low)}"
        return f"{'<' if self.open_high else '≤'} {_number(self.high)}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of words (compared case-insensitively when ``any_case``)."""

    choices: tuple[str, ...]
    any_case: bool = False

    def allows(self, value: Any) -> bool:
        options = {c.lower() for c in self.choices} if self.any_case else set(self.choices)
        return (value.lower() if self.any_case else value) in options

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class Matches:
    """Text that fully matches ``pattern``; ``meaning`` says in words what that is."""

    pattern: str
    meaning: str

    def allows(self, value: Any) -> bool:
        return re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        return self.meaning


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


ANY_PATH = Matches(r".+", "a non-empty path")
TOPIC_NAME = Matches(r"[A-Za-z0-9._-]{1,249}", "a Kafka name: 1-249 of A-Z a-z 0-9 . _ -")
HOST_PORTS = Matches(r"[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*", "comma-separated host:port")
NON_EMPTY = Matches(r"\S.*", "non-empty text")
POSITIVE = Range(0, open_low=True)
AT_LEAST_ONE = Range(1)
NOT_NEGATIVE = Range(0)
SHARE = Range(0, 1, open_low=True, open_high=True)
PORT = Range(0, 65535)
