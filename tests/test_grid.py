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



def test_propagated_variance_matches_monte_carlo():
    """Resampled independent noise has the variance the returned ivar states, pixel by pixel."""
    rng = np.random.default_rng(12)
    loglam_in = np.sort(rng.uniform(3.0, 3.1, size=40))
    sigma = rng.uniform(0.5, 3.0, size=40)
    loglam_out = np.linspace(loglam_in[0], loglam_in[-1], 97)
    _, ivar_out = resample_to_grid(loglam_in, np.zeros(40), sigma**-2, loglam_out)
    assert (ivar_out > 0).all()
    realisations = np.array([resample_to_grid(loglam_in, sigma * rng.normal(size=40), sigma**-2, loglam_out)[0]
                             for _ in range(4000)])
    ratio = realisations.var(axis=0) * ivar_out
    # Each pixel's variance estimate from 4000 draws has a relative standard error of sqrt(2 / 4000) = 2.2%;
    # weights (1 − a) and a instead of their squares would put interior pixels up to 2× off.
    assert np.abs(ratio - 1).max() < 0.12
    assert abs(ratio.mean() - 1) < 0.01


def test_variance_weights_are_squared():
    """A quarter of the way from σ² = 4 to σ² = 1: σ² = (3/4)² · 4 + (1/4)² · 1."""
    _, ivar_out = resample_to_grid(np.array([3.0, 3.1]), np.zeros(2), np.array([0.25, 1.0]), np.array([3.025]))
    assert 1 / ivar_out[0] == pytest.approx(0.75**2 * 4 + 0.25**2 * 1)
