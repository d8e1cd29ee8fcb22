"""Why a spectrum record was refused: one table of reason codes for files, messages and the DLQ.

Every refused record carries exactly one :class:`Reason`; the code is what the
dead-letter queue, the rejects file and the metrics label use, so it is stable
text, never renamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger("zstream.io")


class Reason(str, Enum):
    """Reason codes for refused spectrum records (value = stable code string)."""

    INVALID_JSON = "invalid_json"
    INVALID_ARROW_IPC = "invalid_arrow_ipc"
    INVALID_FITS = "invalid_fits"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    OVERSIZED_MESSAGE = "oversized_message"
    EMPTY_MESSAGE = "empty_message"
    TOO_DEEP = "too_deep"
    FIELD_TOO_LARGE = "field_too_large"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_UTF8_ID = "invalid_utf8_id"
    EMPTY_SPECTRUM = "empty_spectrum"
    LENGTH_MISMATCH = "length_mismatch"
    NONFINITE_WAVELENGTH = "nonfinite_wavelength"
    NONPOSITIVE_WAVELENGTH = "nonpositive_wavelength"
    UNSORTED_WAVELENGTH = "unsorted_wavelength"
    NEGATIVE_IVAR = "negative_ivar"
    UNSCALABLE_IVAR = "unscalable_ivar"
    DUPLICATE_ID_IN_BATCH = "duplicate_id_in_batch"
    NO_OVERLAP_WITH_BASIS = "no_overlap_with_basis"
    INTERNAL_ERROR = "internal_error"

    @property
    def description(self) -> str:
        """One-line human description of the code (the README table)."""
        return DESCRIPTIONS[self]


DESCRIPTIONS: dict[Reason, str] = {
    Reason.INVALID_JSON: "message or JSONL line is not parseable JSON (NaN/Infinity and numbers beyond float64 included)",
    Reason.INVALID_ARROW_IPC: "message is not a readable Arrow IPC stream",
    Reason.INVALID_FITS: "FITS file is unreadable or holds no recognisable 1-D spectrum",
    Reason.UNSUPPORTED_CONTENT_TYPE: "message content type is neither JSON nor Arrow IPC stream",
    Reason.OVERSIZED_MESSAGE: "message is larger than the configured byte limit (checked before decoding)",
    Reason.EMPTY_MESSAGE: "Arrow IPC message holds no spectrum row",
    Reason.TOO_DEEP: "JSON record or Arrow column type is nested deeper than the bound (32 levels)",
    Reason.FIELD_TOO_LARGE: (
        "a field exceeds its size bound: spectrum_id over 256 characters, an array of numbers over 262,144 items, "
        "a string over 10,000 characters, a record with over 256 fields, or a JSON record with over 10,000 other values"
    ),
    Reason.UNKNOWN_SCHEMA_VERSION: "record's schema_version is not one this build reads (current: \"1\")",
    Reason.MISSING_FIELD: "a required field (spectrum_id, wavelength, flux, ivar) is absent or null, or spectrum_id is empty",
    Reason.WRONG_TYPE: "a field or column has the wrong type (e.g. strings where numbers are expected, a JSON array instead of an object)",
    Reason.INVALID_UTF8_ID: "spectrum_id is not valid UTF-8",
    Reason.EMPTY_SPECTRUM: "wavelength/flux/ivar arrays are empty",
    Reason.LENGTH_MISMATCH: "wavelength, flux, ivar (and mask) arrays differ in length",
    Reason.NONFINITE_WAVELENGTH: "wavelength contains NaN, inf or null",
    Reason.NONPOSITIVE_WAVELENGTH: "wavelength has values of 0 Å or less",
    Reason.UNSORTED_WAVELENGTH: "wavelength is not strictly increasing (unsorted or duplicated values)",
    Reason.NEGATIVE_IVAR: "ivar has negative values (variance must be positive; use 0 for bad pixels)",
    Reason.UNSCALABLE_IVAR: (
        "the good pixels' ivar spans more than 1e300: no common flux scale keeps every weight finite"
    ),
    Reason.DUPLICATE_ID_IN_BATCH: "spectrum_id occurs more than once in one batch (service)",
    Reason.NO_OVERLAP_WITH_BASIS: "spectrum has no good pixel inside the basis coverage at any trial z (service)",
    Reason.INTERNAL_ERROR: (
        "decoding or scanning this record raised an unexpected exception (a bug; the detail names it); "
        "the rest of its batch is answered"
    ),
}


MAX_DETAIL_CHARS = 300
"""Longest detail line kept: details travel in DLQ headers and rejects files, and may quote hostile input."""


def one_line(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` on one line (line breaks become spaces), cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.splitlines())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RecordError(ValueError):
    """A record (or a whole message) cannot be used; ``reason`` says why in one code.

    The detail is kept to one line of at most ``MAX_DETAIL_CHARS`` characters.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        detail = one_line(detail)
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def internal_error(error: Exception, context: str) -> RecordError:
    """The ``internal_error`` reason for an unexpected exception: its type and message, on one line.

    The exception is a bug, so it is logged with its traceback; ``context`` says
    what was being done (e.g. ``"decoding a message"``).
    """
    log.error("%s raised %s; refused as internal_error", context, type(error).__name__, exc_info=error)
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 (a message that cannot be built, e.g. the repr of a deep structure)
        message = "(message could not be rendered)"
    return RecordError(Reason.INTERNAL_ERROR, f"{type(error).__name__}: {message}")


@dataclass
class Reject:
    """One refused record: its id when it could be read, the reason code and a detail line."""

    spectrum_id: str | None
    reason: Reason
    detail: str

    def to_dict(self) -> dict[str, str | None]:
        """Plain-dict form for rejects files and DLQ headers."""
        return {"spectrum_id": self.spectrum_id, "reason": self.reason.value, "detail": self.detail}
