"""Checks shared by every input path: one spectrum's arrays, its id and its schema version.

Per-pixel problems that a fit can live with (NaN/inf flux or ivar, ``mask`` = true)
become ivar = 0 and are counted; problems that make the record meaningless raise
:class:`~zstream.io.reasons.RecordError` with a reason code. :class:`BatchCollector`
turns a stream of raw records into a :class:`SpectrumBatch` plus rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from zstream.io.limits import check_id_length, check_pixel_count
from zstream.io.reasons import Reason, RecordError, Reject, internal_error
from zstream.io.records import SpectrumBatch
from zstream.io.schema import SCHEMA_VERSION


@dataclass
class CheckedSpectrum:
    """Arrays of one accepted spectrum: wavelength float64 Å, flux float32, ivar float64, bad pixels at ivar = 0.

    ivar scales as 1/flux², so its exponent range is twice the flux's: physical units (flux ≈ 1e-20,
    ivar ≈ 1e40) overflow float32, hence float64 until the scanner normalises each spectrum.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    n_nonfinite: int


def check_spectrum(
    wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None = None
) -> CheckedSpectrum:
    """Validate one spectrum and fold bad pixels into ivar = 0.

    Parameters
    ----------
    wavelength : array_like, shape (n,)
        Observed wavelengths in Å; must be finite, positive and strictly increasing.
    flux, ivar : array_like, shape (n,)
        Flux density and inverse variance; NaN/inf pixels are masked and counted.
    mask : array_like of bool, shape (n,), optional
        True marks a bad pixel.

    Returns
    -------
    CheckedSpectrum

    Raises
    ------
    RecordError
        ``field_too_large``, ``empty_spectrum``, ``length_mismatch``, ``nonfinite_wavelength``,
        ``nonpositive_wavelength``, ``unsorted_wavelength`` or ``negative_ivar``.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    with np.errstate(over="ignore"):  # flux beyond float32 becomes inf, then a masked pixel
        flux = np.array(flux, dtype=np.float32)
    ivar = np.array(ivar, dtype=np.float64)
    lengths = {"wavelength": wavelength.size, "flux": flux.size, "ivar": ivar.size}
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        lengths["mask"] = mask.size
    check_pixel_count(max(lengths.values()))
    if max(lengths.values()) == 0:
        raise RecordError(Reason.EMPTY_SPECTRUM, "wavelength, flux and ivar are empty")
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name}={size}" for name, size in lengths.items())
        raise RecordError(Reason.LENGTH_MISMATCH, f"array lengths differ ({sizes}); all must be equal")
    n_bad_wavelength = int(np.count_nonzero(~np.isfinite(wavelength)))
    if n_bad_wavelength:
        raise RecordError(
            Reason.NONFINITE_WAVELENGTH, f"{n_bad_wavelength} of {wavelength.size} wavelengths are NaN/inf/null"
        )
    n_not_increasing = int(np.count_nonzero(np.diff(wavelength) <= 0))
    if n_not_increasing:
        raise RecordError(
            Reason.UNSORTED_WAVELENGTH,
            f"wavelength is not strictly increasing at {n_not_increasing} of {wavelength.size - 1} steps "
            "(unsorted or duplicated values); sort the pixels and drop duplicates",
        )
    if wavelength[0] <= 0:  # increasing, so the first pixel is the smallest
        n_nonpositive = int(np.searchsorted(wavelength, 0.0, side="right"))
        raise RecordError(
            Reason.NONPOSITIVE_WAVELENGTH, f"{n_nonpositive} of {wavelength.size} wavelengths are ≤ 0 Å; give observed λ in Å"
        )
    n_negative = int(np.count_nonzero(ivar < 0))
    if n_negative:
        raise RecordError(
            Reason.NEGATIVE_IVAR, f"{n_negative} of {ivar.size} ivar values are negative; use ivar = 0 for bad pixels"
        )
    nonfinite = ~(np.isfinite(flux) & np.isfinite(ivar))
    bad = nonfinite if mask is None else nonfinite | mask
    flux[nonfinite] = 0.0
    ivar[bad] = 0.0
    weighted = ivar[ivar > 0]
    if weighted.size and not np.log10(weighted.max()) - np.log10(weighted.min()) <= MAX_IVAR_DECADES:
        raise RecordError(
            Reason.UNSCALABLE_IVAR,
            f"ivar of the good pixels spans {weighted.min():.3g}–{weighted.max():.3g}: normalised to one flux scale, "
            "some weights would overflow; mask (ivar = 0) the pixels whose ivar is off by hundreds of decades",
        )
    return CheckedSpectrum(wavelength, flux, ivar, int(np.count_nonzero(nonfinite)))


MAX_IVAR_DECADES = 300.0
"""Largest spread of good pixels' ivar, in decades: the scanner divides every spectrum by its median
noise, and the weights then span this range, which must stay finite in float64. Any physical units pass."""


def check_spectrum_id(value: object) -> str:
    """Return ``value`` as a non-empty UTF-8 ``str``.

    Raises
    ------
    RecordError
        ``missing_field`` (None or empty), ``invalid_utf8_id`` (bytes or str that
        are not valid UTF-8), ``field_too_large`` (longer than ``MAX_ID_CHARS``) or ``wrong_type``.
    """
    if value is None or value == "" or value == b"":
        raise RecordError(Reason.MISSING_FIELD, "spectrum_id is missing or empty")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RecordError(
                Reason.INVALID_UTF8_ID, f"spectrum_id {value[:80]!r} is not valid UTF-8 ({error.reason})"
            ) from None
    if not isinstance(value, str):
        raise RecordError(Reason.WRONG_TYPE, f"spectrum_id must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(Reason.INVALID_UTF8_ID, f"spectrum_id {ascii(value[:80])} is not valid UTF-8") from None
    check_id_length(value)
    return value


def readable_id(value: object) -> str | None:
    """``value`` as a valid spectrum id, or None when it is not one (for naming rejects)."""
    try:
        return check_spectrum_id(value)
    except RecordError:
        return None


def check_schema_version(value: object) -> None:
    """Accept an absent/null ``schema_version`` or the current one; else raise ``unknown_schema_version``."""
    if value is not None and value != SCHEMA_VERSION:
        raise RecordError(
            Reason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {ascii(value)[:80]} is not supported (this build reads {SCHEMA_VERSION!r}); upgrade zstream",
        )


class BatchCollector:
    """Accumulate checked spectra and rejects, then emit one :class:`SpectrumBatch`.

    ``kept`` lists the input positions of accepted records, so callers can take
    the matching pass-through rows.
    """

    def __init__(self) -> None:
        self.spectrum_id: list[str] = []
        self.spectra: list[CheckedSpectrum] = []
        self.z: list[float] = []
        self.has_z = False
        self.kept: list[int] = []
        self.rejects: list[Reject] = []
        self._position = 0

    def add(
        self,
        spectrum_id: object,
        wavelength: np.ndarray | None,
        flux: np.ndarray | None,
        ivar: np.ndarray | None,
        *,
        mask: np.ndarray | None = None,
        z: float | None = None,
        schema_version: object = None,
    ) -> None:
        """Check one raw record; keep it or record a reject. ``None`` arrays count as missing fields.

        An unexpected exception while checking is the record's ``internal_error`` reject, never the caller's.
        """
        position = self._position
        self._position += 1
        readable = readable_id(spectrum_id)
        try:
            check_schema_version(schema_version)
            spectrum_id = check_spectrum_id(spectrum_id)
            missing = [name for name, array in (("wavelength", wavelength), ("flux", flux), ("ivar", ivar)) if array is None]
            if missing:
                raise RecordError(Reason.MISSING_FIELD, f"required field(s) {', '.join(missing)} missing or null")
            checked = check_spectrum(wavelength, flux, ivar, mask)
        except RecordError as error:
            self._reject(readable, error)
            return
        except Exception as error:  # noqa: BLE001 (a bug must cost one record, not the batch)
            self._reject(readable, internal_error(error, f"checking spectrum {readable!r}"))
            return
        self.spectrum_id.append(spectrum_id)
        self.spectra.append(checked)
        self.z.append(np.nan if z is None else float(z))
        self.has_z = self.has_z or z is not None
        self.kept.append(position)

    def skip(self, spectrum_id: str | None, error: RecordError) -> None:
        """Reject an input that never reached :meth:`add`, keeping positions aligned."""
        self._position += 1
        self._reject(spectrum_id, error)

    def _reject(self, spectrum_id: str | None, error: RecordError) -> None:
        self.rejects.append(Reject(spectrum_id, error.reason, error.detail))

    def finish(self, extra: pa.Table | None = None) -> tuple[SpectrumBatch, list[Reject]]:
        """Return the accepted spectra (``extra`` rows = accepted positions only) and the rejects."""
        batch = SpectrumBatch(
            spectrum_id=self.spectrum_id,
            wavelength=[s.wavelength for s in self.spectra],
            flux=[s.flux for s in self.spectra],
            ivar=[s.ivar for s in self.spectra],
            z=np.asarray(self.z, dtype=np.float64) if self.has_z else None,
            extra=extra if extra is None or extra.num_columns else None,
            n_nonfinite=np.asarray([s.n_nonfinite for s in self.spectra], dtype=np.int64),
        )
        return batch, self.rejects
