"""Spectral classes: one small template block per class inside a basis, each with its own trial-z range.

A single basis shared by all classes spends its components on the common class
and fails the rare ones (redrock keeps ~10 galaxy, 4 QSO and 5 per star
subtype components). A basis file stores the classes' templates one after the
other and their row ranges in ``meta["classes"]`` (``{"GALAXY": [0, 10], ...}``);
a basis without that entry is one ``GALAXY`` block, as before classes existed.
Class names follow redrock's ``SPECTYPE`` convention.
"""

from __future__ import annotations

from zstream.errors import UserError
from zstream.io.records import Basis

SPECTYPES: tuple[str, ...] = ("GALAXY", "QSO", "STAR")
"""Known spectral classes, in the order their blocks are stored."""

DEFAULT_CLASS = "GALAXY"
"""Class of training spectra without a ``spectype`` and of a basis without classes."""

DEFAULT_K: dict[str, int] = {"GALAXY": 10, "QSO": 4, "STAR": 5}
"""Templates per class when ``--k`` names none (K-fold rank selection, see BENCHMARKS.md)."""

STAR_Z_RANGE: tuple[float, float] = (-0.002, 0.002)
"""Trial redshifts of stars: within ±600 km/s of rest, as redrock scans them."""


def class_blocks(basis: Basis) -> dict[str, slice]:
    """Template rows of each class of ``basis``, in storage order.

    Raises
    ------
    UserError
        When ``meta["classes"]`` names an unknown class or its ranges do not tile the templates.
    """
    ranges = basis.meta.get("classes") or {DEFAULT_CLASS: [0, basis.k]}
    blocks: dict[str, slice] = {}
    expected_start = 0
    for name, (start, stop) in ranges.items():
        if name not in SPECTYPES or start != expected_start or stop <= start:
            raise UserError(
                f"basis {basis.version!r}: class ranges {ranges} must name classes from {SPECTYPES} and tile "
                f"templates 0..{basis.k} in order; rebuild it with zstream fit"
            )
        blocks[name] = slice(int(start), int(stop))
        expected_start = stop
    if expected_start != basis.k:
        raise UserError(f"basis {basis.version!r}: class ranges {ranges} cover {expected_start} of {basis.k} templates")
    return blocks


def parse_k(text: str) -> dict[str, int] | int:
    """``--k``: one integer for every class, or ``GALAXY=10,QSO=4,STAR=5``.

    Raises
    ------
    UserError
        On an unknown class, a repeated class or a count below 1.
    """
    text = text.strip()
    if "=" not in text:
        return _positive(text, "--k")
    counts: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().upper()
        if name not in SPECTYPES or name in counts:
            raise UserError(f"--k {text!r}: {name!r} is not one of {SPECTYPES} or appears twice; write e.g. GALAXY=10,QSO=4")
        counts[name] = _positive(value, f"--k {name}")
    return counts


def _positive(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"{what}: {value!r} is not an integer") from None
    if number < 1:
        raise UserError(f"{what}: need at least 1 template, got {number}")
    return number
