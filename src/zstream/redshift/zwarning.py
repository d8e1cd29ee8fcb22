"""Warning bits attached to every redshift result (the ``warnings`` column).

A result with ``warnings == 0`` is clean. Bits combine (``ZWarning.Z_AT_EDGE |
ZWarning.SMALL_DELTA_CHI2``); the integer value of each bit is part of the result
format and never changes meaning.
"""

from __future__ import annotations

from enum import IntFlag


class ZWarning(IntFlag):
    """Named, documented warning bits of a redshift result."""

    LITTLE_COVERAGE = 1
    """Fewer than half of the spectrum's pixels are usable (finite, ivar > 0, inside the grid)."""

    SMALL_DELTA_CHI2 = 2
    """log10 Δχ² is at or below the source threshold: the minimum is not significant (``is_source`` false)."""

    Z_AT_EDGE = 4
    """The best redshift is the first or last trial redshift: the true minimum may lie outside the range."""

    NEGATIVE_MEDIAN_FLUX = 8
    """The median flux of the usable pixels is negative; non-negative fits are unreliable (Bourahma et al. 2026, Sect. 5)."""

    ALL_MASKED = 16
    """No usable pixel: no fit was made; z, errors and scores are null and ``is_source`` is false."""

    BAD_PIXELS_MASKED = 32
    """Some pixels had NaN/inf flux or ivar and were given zero weight."""

    NNLS_NOT_CONVERGED = 64
    """The batched non-negative solver hit its iteration limit at some trial redshift."""

    BAD_CURVATURE = 128
    """The χ² curve is not convex at the refined minimum, so ``z_err`` could not be measured (null)."""

    @classmethod
    def describe(cls, value: int) -> list[str]:
        """Names of the bits set in ``value``, lowest bit first."""
        return [flag.name for flag in cls if value & flag]
