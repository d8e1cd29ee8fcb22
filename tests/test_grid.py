"""The log-λ grid and the observed → rest transform."""

import math

import numpy as np
import pytest

from zstream.grid import LogGrid, resample_to_grid, to_rest_frame


def test_default_grid_matches_paper_range():
    grid = LogGrid()
    assert grid.loglam[0] == pytest.approx(2.77)
    assert grid.loglam[-1] <= 3.97 + 1e-12
    assert 3.97 - grid.loglam[-1] < grid.step
    assert np.allclose(np.diff(grid.loglam), grid.step)


def test_shift_and_redshift_are_inverse():
    grid = LogGrid()
    z = np.array([0.0, 0.5, 3.2, 6.7])
    assert np.allclose(grid.z_of(grid.shift_of(z)), z)


def test_rest_frame_line_lands_at_rest_wavelength():
    grid = LogGrid(3.4, 3.9, 1e-4)
    z = 0.8
    wave = np.arange(4600.0, 9350.0, 1.25)
    line_rest = 3727.0
    flux = np.exp(-0.5 * ((wave - line_rest * (1 + z)) / 3.0) ** 2)
    flux_rest, ivar_rest = to_rest_frame(wave, flux, np.ones_like(wave), z, grid)
    peak = grid.wavelength[np.argmax(flux_rest)]
    assert abs(peak - line_rest) < 0.5
    continuum_rest, _ = to_rest_frame(wave, np.ones_like(wave), np.ones_like(wave), z, grid)
    inner = (grid.wavelength > 2600) & (grid.wavelength < 5100)
    expected = math.log(10) * grid.wavelength[inner] * (1 + z)
    assert np.allclose(continuum_rest[inner], expected, rtol=1e-6)
    covered = (grid.wavelength >= 4600 / (1 + z)) & (grid.wavelength <= 9348.75 / (1 + z))
    assert np.all(ivar_rest[~covered] == 0)
    assert np.all(ivar_rest[covered][1:-1] > 0)


def test_bad_pixels_get_zero_weight_not_zero_flux_signal():
    loglam_in = np.linspace(3.0, 3.1, 11)
    ivar = np.ones(11)
    ivar[5] = 0.0
    flux, out_ivar = resample_to_grid(loglam_in, np.ones(11), ivar, np.linspace(3.0, 3.1, 101))
    assert np.all(out_ivar[41:60] == 0)
    assert np.all(out_ivar[:41] > 0) and np.all(out_ivar[60:] > 0)
    assert np.all(flux[:41] == pytest.approx(1.0))


def test_invalid_grid_is_rejected():
    with pytest.raises(ValueError, match="invalid grid"):
        LogGrid(3.0, 2.0, 1e-4)
