"""The worst-case gallery: best-fit models invert the rest-frame transform; curves come from a rescan."""

import numpy as np
import pytest

from zstream.evaluate.gallery import build_gallery, observed_model
from zstream.grid import LogGrid, to_rest_frame
from zstream.io.records import Basis, SpectrumBatch


def _smooth_basis(grid: LogGrid) -> Basis:
    x = grid.loglam
    lines = sum(np.exp(-0.5 * ((x - centre) / 0.002) ** 2) for centre in (3.52, 3.58, 3.70))
    templates = np.stack([1.0 + 2.0 * (x - x[0]), lines])
    return Basis(templates.astype(np.float32), grid, "test")


def test_observed_model_is_the_inverse_of_the_rest_frame_transform():
    grid = LogGrid(3.4, 3.8, 1e-4)
    basis = _smooth_basis(grid)
    z = 0.7
    wavelength = np.linspace(4600, 9350, 3801)
    coefficients = np.array([2.0, 3.0])
    model = observed_model(basis, coefficients, z, wavelength)
    rest_flux, rest_ivar = to_rest_frame(wavelength, model, np.ones_like(model), z, grid)
    covered = (rest_ivar > 0) & (grid.wavelength > 4600 / 1.7 + 5) & (grid.wavelength < 9350 / 1.7 - 5)
    expected = coefficients @ basis.templates
    assert covered.sum() > 100
    assert rest_flux[covered] == pytest.approx(expected[covered], rel=2e-3)


def test_gallery_rescans_the_worst_cases_with_the_basis():
    grid = LogGrid(3.3, 3.98, 2e-4)
    basis = _smooth_basis(grid)
    wavelength = np.linspace(4600, 9350, 1901)
    rng = np.random.default_rng(1)
    fluxes = [observed_model(basis, np.array([1.0, 2.0]), z, wavelength) + rng.normal(0, 1e-6, wavelength.size)
              for z in (0.3, 0.9)]
    batch = SpectrumBatch(["a", "b"], [wavelength] * 2, fluxes, [np.full(wavelength.size, 1e12)] * 2)
    worst = [{"spectrum_id": "b", "source_class": "oii", "z_true": 0.9, "z_pred": 0.1},
             {"spectrum_id": "not-in-batch", "source_class": "oii", "z_true": 1.0, "z_pred": None}]
    items = build_gallery(worst, batch, basis=basis)
    assert [item.spectrum_id for item in items] == ["b"]
    item = items[0]
    assert item.chi2 is not None and item.chi2.shape == item.z_grid.shape
    assert item.model is not None and item.model.shape == wavelength.shape
    assert item.z_grid[np.argmin(item.chi2)] == pytest.approx(0.9, abs=0.002)
