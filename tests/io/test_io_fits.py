"""FITS spectra (binary tables and MUSE-style DATA + STAT images) are read with their units honoured."""

import numpy as np
import pytest
from astropy.io import fits

from zstream.io import Reason, read_spectra

N = 50
WAVE_ANGSTROM = np.linspace(4750.0, 9350.0, N)


def _flux_and_variance(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(10.0, 1.0, N), rng.uniform(0.5, 2.0, N)


def _write_table(path, columns, *, one_row=False, header=None):
    fits_columns = [
        fits.Column(name=name, format=f"{N}D" if one_row else "D", unit=unit, array=values[None, :] if one_row else values)
        for name, values, unit in columns
    ]
    primary = fits.PrimaryHDU(header=header)
    fits.HDUList([primary, fits.BinTableHDU.from_columns(fits_columns)]).writeto(path)


@pytest.mark.parametrize(("unit", "scale"), [("Angstrom", 1.0), ("nm", 0.1), (None, 1.0)])
def test_table_with_variance_column_in_angstrom_or_nm(tmp_path, unit, scale):
    flux, variance = _flux_and_variance()
    _write_table(tmp_path / "obj-7.fits", [("WAVE", WAVE_ANGSTROM * scale, unit), ("FLUX", flux, None), ("VAR", variance, None)])
    batch, rejects = read_spectra(tmp_path / "obj-7.fits")
    assert rejects == []
    assert batch.spectrum_id == ["obj-7"]
    np.testing.assert_allclose(batch.wavelength[0], WAVE_ANGSTROM, rtol=1e-12)
    np.testing.assert_allclose(batch.ivar[0], 1.0 / variance, rtol=1e-6)
    np.testing.assert_allclose(batch.flux[0], flux, rtol=1e-6)


def test_table_with_one_row_of_arrays_ivar_and_header_id(tmp_path):
    flux, variance = _flux_and_variance(1)
    header = fits.Header({"SPEC_ID": "musewide-123"})
    columns = [("wavelength", WAVE_ANGSTROM, "Angstrom"), ("flux", flux, None), ("ivar", 1.0 / variance, None)]
    _write_table(tmp_path / "x.fits", columns, one_row=True, header=header)
    batch, _ = read_spectra(tmp_path / "x.fits")
    assert batch.spectrum_id == ["musewide-123"]
    np.testing.assert_allclose(batch.wavelength[0], WAVE_ANGSTROM)
    np.testing.assert_allclose(batch.ivar[0], 1.0 / variance, rtol=1e-6)


def test_table_with_log10_wavelength(tmp_path):
    flux, variance = _flux_and_variance(2)
    _write_table(tmp_path / "sdss.fits", [("loglam", np.log10(WAVE_ANGSTROM), None), ("flux", flux, None), ("ivar", 1 / variance, None)])
    batch, _ = read_spectra(tmp_path / "sdss.fits")
    np.testing.assert_allclose(batch.wavelength[0], WAVE_ANGSTROM, rtol=1e-12)


def _write_muse_image(path, *, cunit, crval, cdelt, variance_name="STAT", variance=None):
    flux, default_variance = _flux_and_variance(3)
    data = fits.ImageHDU(flux, name="DATA")
    data.header.update(CRVAL1=crval, CDELT1=cdelt, CRPIX1=1.0, CUNIT1=cunit, CTYPE1="AWAV")
    stat = fits.ImageHDU(default_variance if variance is None else variance, name=variance_name)
    fits.HDUList([fits.PrimaryHDU(), data, stat]).writeto(path)
    return flux, default_variance


@pytest.mark.parametrize(("cunit", "crval", "cdelt"), [("Angstrom", 4750.0, 1.25), ("nm", 475.0, 0.125)])
def test_muse_image_with_linear_wcs_and_stat_extension(tmp_path, cunit, crval, cdelt):
    flux, variance = _write_muse_image(tmp_path / "spec_0001.fits.gz", cunit=cunit, crval=crval, cdelt=cdelt)
    batch, rejects = read_spectra(tmp_path / "spec_0001.fits.gz")
    assert rejects == []
    assert batch.spectrum_id == ["spec_0001"]
    np.testing.assert_allclose(batch.wavelength[0], 4750.0 + 1.25 * np.arange(N))
    np.testing.assert_allclose(batch.flux[0], flux, rtol=1e-6)
    np.testing.assert_allclose(batch.ivar[0], 1.0 / variance, rtol=1e-6)


def test_zero_variance_pixels_are_masked_and_counted(tmp_path):
    _, variance = _flux_and_variance(3)
    variance[[4, 9]] = 0.0
    _write_muse_image(tmp_path / "s.fits", cunit="Angstrom", crval=4750.0, cdelt=1.25, variance=variance)
    batch, _ = read_spectra(tmp_path / "s.fits")
    assert batch.n_nonfinite.tolist() == [2]
    assert np.flatnonzero(batch.ivar[0] == 0).tolist() == [4, 9]


def test_directory_of_fits_files_is_one_stream_with_rejects(tmp_path):
    for i in range(3):
        _write_muse_image(tmp_path / f"s{i}.fits", cunit="Angstrom", crval=4750.0, cdelt=1.25)
    (tmp_path / "broken.fits").write_bytes(b"not a fits file")
    batch, rejects = read_spectra(tmp_path)
    assert batch.spectrum_id == ["s0", "s1", "s2"]
    assert [r.reason for r in rejects] == [Reason.INVALID_FITS]
    assert "broken.fits" in rejects[0].detail


def test_fits_without_a_spectrum_is_rejected(tmp_path):
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4)))]).writeto(tmp_path / "image.fits")
    batch, rejects = read_spectra(tmp_path / "image.fits")
    assert len(batch) == 0
    assert rejects[0].reason == Reason.INVALID_FITS


def test_fits_with_a_non_length_wavelength_unit_is_rejected(tmp_path):
    flux, variance = _flux_and_variance()
    _write_table(tmp_path / "s.fits", [("WAVE", WAVE_ANGSTROM, "s"), ("FLUX", flux, None), ("VAR", variance, None)])
    _, rejects = read_spectra(tmp_path / "s.fits")
    assert rejects[0].reason == Reason.INVALID_FITS
    assert "'s'" in rejects[0].detail


def test_non_linear_wavelength_wcs_is_rejected_not_misread(tmp_path):
    flux, variance = _flux_and_variance()
    data = fits.ImageHDU(flux, name="DATA")
    data.header.update(CRVAL1=3.68, CDELT1=1e-4, CRPIX1=1.0, CTYPE1="WAVE-LOG")
    fits.HDUList([fits.PrimaryHDU(), data, fits.ImageHDU(variance, name="STAT")]).writeto(tmp_path / "log.fits")
    _, rejects = read_spectra(tmp_path / "log.fits")
    assert rejects[0].reason == Reason.INVALID_FITS
    assert rejects[0].detail.startswith(str(tmp_path / "log.fits"))
    assert "WAVE-LOG" in rejects[0].detail
