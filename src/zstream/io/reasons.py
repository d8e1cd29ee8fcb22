"""Why a spectrum record was refused: one table of reason codes for files, messages and the DLQ.

Every refused record carries exactly one :class:`Reason`; the code is what the
dead-letter queue, the rejects file and the metrics label use, so it is stable
text, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reason(str, Enum):
    """Reason codes for refused spectrum records (value = stable code string)."""

    INVALID_JSON = "invalid_json"
    INVALID_ARROW_IPC = "invalid_arrow_ipc"
    INVALID_FITS = "invalid_fits"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    OVERSIZED_MESSAGE = "oversized_message"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_UTF8_ID = "invalid_utf8_id"
    EMPTY_SPECTRUM = "empty_spectrum"
    LENGTH_MISMATCH = "length_mismatch"
    NONFINITE_WAVELENGTH = "nonfinite_wavelength"
    UNSORTED_WAVELENGTH = "unsorted_wavelength"
    NEGATIVE_IVAR = "negative_ivar"
    DUPLICATE_ID_IN_BATCH = "duplicate_id_in_batch"
    NO_OVERLAP_WITH_BASIS = "no_overlap_with_basis"

    @property
    def description(self) -> str:
        """One-line human description of the code (the README table)."""
        return DESCRIPTIONS[self]


DESCRIPTIONS: dict[Reason, str] = {
    Reason.INVALID_JSON: "message or JSONL line is not parseable JSON",
    Reason.INVALID_ARROW_IPC: "message is not a readable Arrow IPC stream",
    Reason.INVALID_FITS: "FITS file is unreadable or holds no recognisable 1-D spectrum",
    Reason.UNSUPPORTED_CONTENT_TYPE: "message content type is neither JSON nor Arrow IPC stream",
    Reason.OVERSIZED_MESSAGE: "message is larger than the configured byte limit (checked before decoding)",
    Reason.UNKNOWN_SCHEMA_VERSION: "record's schema_version is not one this build reads (current: \"1\")",
    Reason.MISSING_FIELD: "a required field (spectrum_id, wavelength, flux, ivar) is absent or null, or spectrum_id is empty",
    Reason.WRONG_TYPE: "a field or column has the wrong type (e.g. strings where numbers are expected, a JSON array instead of an object)",
    Reason.INVALID_UTF8_ID: "spectrum_id is not valid UTF-8",
    Reason.EMPTY_SPECTRUM: "wavelength/flux/ivar arrays are empty",
    Reason.LENGTH_MISMATCH: "wavelength, flux, ivar (and mask) arrays differ in length",
    Reason.NONFINITE_WAVELENGTH: "wavelength contains NaN, inf or null",
    Reason.UNSORTED_WAVELENGTH: "wavelength is not strictly increasing (unsorted or duplicated values)",
    Reason.NEGATIVE_IVAR: "ivar has negative values (variance must be positive; use 0 for bad pixels)",
    Reason.DUPLICATE_ID_IN_BATCH: "spectrum_id occurs more than once in one batch (service)",
    Reason.NO_OVERLAP_WITH_BASIS: "spectrum has no good pixel inside the basis coverage at any trial z (service)",
}


class RecordError(ValueError):
    """A record (or a whole message) cannot be used; ``reason`` says why in one code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Reject:
    """One refused record: its id when it could be read, the reason code and a detail line."""

    spectrum_id: str | None
    reason: Reason
    detail: str

    def to_dict(self) -> dict[str, str | None]:
        """Plain-dict form for rejects files and DLQ headers."""
        return {"spectrum_id": self.spectrum_id, "reason": self.reason.value, "detail": self.detail}
