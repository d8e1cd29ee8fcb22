"""Spectral classes: one small template block per class inside a basis, each with its own trial-z range.

A single basis shared by all classes spends its components on the common class
and fails the rare ones (redrock keeps ~10 galaxy, 4 QSO and 5 per star
subtype components). A basis file stores the classes' templates one after the
other and their row ranges in ``meta["classes"]`` (``{"GALAXY": [0, 10], ...}``);
a basis without that entry is one ``GALAXY`` block, as before classes existed.
Class names follow redrock's ``SPECTYPE`` convention.
"""

from __future__ import annotations

import math

from zstream.errors import UserError
from zstream.io.records import Basis

SPECTYPES: tuple[str, ...] = ("GALAXY", "QSO", "STAR")
"""Known spectral classes, in the order their blocks are stored."""

DEFAULT_CLASS = "GALAXY"
"""Class of training spectra without a ``spectype`` and of a basis without classes."""

DEFAULT_K: dict[str, int] = {"GALAXY": 10, "QSO": 4, "STAR": 5}
"""Templates per class when ``--k`` names none (K-fold rank selection, see BENCHMARKS.md)."""

DEFAULT_SMOOTHNESS: dict[str, float] = {"GALAXY": 0.0, "QSO": 0.0, "STAR": 1000.0}
"""First-difference smoothness weight λ of each class's NMF (de Souza et al. 2026, Eqs. 1–3). A rare class learns its templates from few noisy spectra, and the noise they keep costs
every fit of a real member χ² that a richer class's templates, at some wrong redshift, do not pay:
faint stars went to galaxies. On 300 independent simulated stars λ = 1000 on unit-RMS templates
raised the star GF from 0.60 to 0.82 and changed no other class; smoothing the galaxy block blurred
the passive galaxies' absorption features and lost them (BENCHMARKS.md)."""

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


def trained_smoothness(basis: Basis, name: str) -> float:
    """Smoothness weight the class's templates were fitted with (``meta["fits"][name]["nmf"]``, written by
    ``zstream fit`` and by refits), so a refit keeps it; :data:`DEFAULT_SMOOTHNESS` for a basis that does
    not record one."""
    settings = (basis.meta.get("fits") or {}).get(name, {}).get("nmf") or {}
    return float(settings.get("smoothness", DEFAULT_SMOOTHNESS[name]))


def for_class(setting, name: str, defaults: dict):
    """The value of a per-class setting (``--k``, ``--smoothness``) for class ``name``: the setting itself
    when it is one value for every class, else its entry for ``name``, else ``defaults[name]``."""
    if setting is None or isinstance(setting, dict):
        return (setting or {}).get(name, defaults[name])
    return setting


def parse_k(text: str) -> dict[str, int] | int:
    """``--k``: one integer for every class, or ``GALAXY=10,QSO=4,STAR=5``.

    Raises
    ------
    UserError
        On an unknown class, a repeated class or a count below 1.
    """
    return _per_class(text, "--k", _positive)


def parse_smoothness(text: str) -> dict[str, float] | float:
    """``--smoothness``: one weight for every class, or ``STAR=1000,QSO=100``.

    Raises
    ------
    UserError
        On an unknown class, a repeated class or a weight that is negative or not finite.
    """
    return _per_class(text, "--smoothness", _non_negative)


def _per_class(text: str, option: str, parse_value):
    """One value for every class, or ``NAME=value`` pairs, each value read by ``parse_value``."""
    text = text.strip()
    if "=" not in text:
        return parse_value(text, option)
    values: dict = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().upper()
        if name not in SPECTYPES or name in values:
            raise UserError(f"{option} {text!r}: {name!r} is not one of {SPECTYPES} or appears twice; write e.g. GALAXY=10,QSO=4")
        values[name] = parse_value(value, f"{option} {name}")
    return values


def _positive(value: str, what: str) -> int:
    return _checked(value, what, int, lambda n: n >= 1, "at least 1 template")


def _non_negative(value: str, what: str) -> float:
    return _checked(value, what, float, lambda n: math.isfinite(n) and n >= 0, "a finite weight ≥ 0")


def _checked(value: str, what: str, convert, valid, need: str):
    """``convert(value)``, refused with a one-line error naming ``what`` unless ``valid``."""
    try:
        number = convert(value)
    except ValueError:
        raise UserError(f"{what}: {value!r} is not {'an integer' if convert is int else 'a number'}") from None
    if not valid(number):
        raise UserError(f"{what}: need {need}, got {number}")
    return number
