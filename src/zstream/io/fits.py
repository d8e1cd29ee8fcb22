"""Read one reduced 1-D spectrum from a FITS file (observatory pipelines deliver FITS).

Two layouts are recognised:

* a binary table with a wavelength column (``wavelength``/``wave``/``lambda``,
  or ``loglam`` = log10 Å), ``flux`` and ``ivar`` or a variance column
  (``variance``/``var``/``stat``); one pixel per row, or one row holding arrays;
* an image HDU (``DATA``/``FLUX``, else the primary) with a linear wavelength
  WCS (``CRVAL1``, ``CDELT1`` or ``CD1_1``, ``CRPIX1``) plus a variance image
  (``STAT``/``VAR``/``VARIANCE``) or ``IVAR``, as the MUSE pipeline writes.

Wavelength units come from ``TUNITn`` / ``CUNIT1`` through ``astropy.units``
(Å when absent). The spectrum id is the primary-header ``SPEC_ID`` if present,
else the file name without its FITS suffix (``OBJECT`` names a field, not a
spectrum, so it is not used).
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from zstream.io.reasons import Reason, RecordError

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
WAVELENGTH_COLUMNS = ("wavelength", "wave", "lambda", "lam")
LOG_WAVELENGTH_COLUMNS = ("loglam",)
FLUX_NAMES = ("flux", "data")
IVAR_NAMES = ("ivar",)
VARIANCE_NAMES = ("variance", "var", "stat")
ID_KEYWORD = "SPEC_ID"


def is_fits_path(path: Path) -> bool:
    """True when ``path`` has a FITS suffix (optionally gzipped)."""
    return path.name.lower().endswith(FITS_SUFFIXES)


def read_fits_spectrum(path: str | Path) -> dict:
    """Read the spectrum in one FITS file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``spectrum_id`` (str), ``wavelength`` (ndarray (n,), float64, Å),
        ``flux`` and ``ivar`` (ndarray (n,)), ready for validation.

    Raises
    ------
    RecordError
        ``invalid_fits`` when the file is unreadable or holds no recognisable spectrum.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdus:
            record = _from_table(hdus) or _from_image(hdus)
            if record is None:
                raise RecordError(
                    Reason.INVALID_FITS,
                    "no binary table with wavelength/flux/ivar-or-variance columns and no 1-D "
                    "image with a linear wavelength WCS plus a variance extension",
                )
            record["spectrum_id"] = _spectrum_id(hdus, path)
    except RecordError as error:
        raise RecordError(error.reason, f"{path}: {error.detail}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RecordError(Reason.INVALID_FITS, f"{path}: cannot read as FITS spectrum ({error})") from None
    return record


def _from_table(hdus: fits.HDUList) -> dict | None:
    for hdu in hdus:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        columns = {name.lower(): name for name in hdu.columns.names}
        flux_name = _first(columns, FLUX_NAMES)
        wave_name = _first(columns, WAVELENGTH_COLUMNS)
        log_wave_name = _first(columns, LOG_WAVELENGTH_COLUMNS)
        ivar_name = _first(columns, IVAR_NAMES)
        variance_name = _first(columns, VARIANCE_NAMES)
        if flux_name is None or (wave_name or log_wave_name) is None or (ivar_name or variance_name) is None:
            continue
        if wave_name is not None:
            wavelength = _column(hdu, wave_name) * _angstrom_per_unit(hdu.columns[wave_name].unit)
        else:
            wavelength = 10.0 ** _column(hdu, log_wave_name)
        flux = _column(hdu, flux_name)
        ivar = _column(hdu, ivar_name) if ivar_name else _inverse(_column(hdu, variance_name))
        return {"wavelength": wavelength, "flux": flux, "ivar": ivar}
    return None


def _from_image(hdus: fits.HDUList) -> dict | None:
    names = {hdu.name.lower(): hdu for hdu in hdus}
    data_hdu = next((names[n] for n in FLUX_NAMES if n in names), hdus[0])
    if data_hdu.data is None or data_hdu.header.get("NAXIS") != 1:
        return None
    ivar_hdu = next((names[n] for n in IVAR_NAMES if n in names), None)
    variance_hdu = next((names[n] for n in VARIANCE_NAMES if n in names), None)
    if ivar_hdu is None and variance_hdu is None:
        return None
    header = data_hdu.header
    step = header.get("CDELT1", header.get("CD1_1"))
    if "CRVAL1" not in header or step is None:
        return None
    if "-" in str(header.get("CTYPE1", "")):  # e.g. WAVE-LOG, WAVE-TAB: not a linear axis
        raise RecordError(Reason.INVALID_FITS, f"wavelength axis CTYPE1={header['CTYPE1']!r} is not linear; only linear WCS is read")
    pixel = np.arange(1, header["NAXIS1"] + 1, dtype=np.float64)
    wavelength = header["CRVAL1"] + (pixel - header.get("CRPIX1", 1.0)) * step
    flux = np.asarray(data_hdu.data, dtype=np.float64)
    ivar = np.asarray(ivar_hdu.data, dtype=np.float64) if ivar_hdu is not None else _inverse(variance_hdu.data)
    return {"wavelength": wavelength * _angstrom_per_unit(header.get("CUNIT1")), "flux": flux, "ivar": ivar}


def _first(columns: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    return next((columns[name] for name in candidates if name in columns), None)


def _column(hdu: fits.BinTableHDU, name: str) -> np.ndarray:
    """A column as a flat float64 array: one pixel per row, or one row holding the array."""
    data = np.asarray(hdu.data[name], dtype=np.float64)
    return data[0] if data.ndim == 2 and data.shape[0] == 1 else data.ravel()


def _inverse(variance: np.ndarray) -> np.ndarray:
    """ivar = 1 / variance; zero variance gives inf (masked and counted by validation)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / np.asarray(variance, dtype=np.float64)


def _angstrom_per_unit(unit: str | None) -> float:
    """Factor turning wavelengths in ``unit`` into Å (1 when no unit is given)."""
    if not unit:
        return 1.0
    try:
        return float(u.Unit(unit).to(u.AA))
    except (ValueError, u.UnitsError):
        raise RecordError(
            Reason.INVALID_FITS, f"wavelength unit {unit!r} is not a length unit astropy knows (use Angstrom or nm)"
        ) from None


def _spectrum_id(hdus: fits.HDUList, path: Path) -> str:
    value = hdus[0].header.get(ID_KEYWORD)
    if isinstance(value, str) and value.strip():
        return value.strip()
    name = path.name
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
