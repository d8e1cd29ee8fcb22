"""Nuisance shapes learned from the training residuals, for spectra that come without a sky column."""

import dataclasses

import numpy as np
import pytest

from zstream.grid import LogGrid
from zstream.io import load_basis, save_basis
from zstream.redshift import ScanConfig, Scanner, train_basis
from zstream.redshift.residual_nuisance import META_KEY, MIN_SPECTRA, ResidualShapes, learn_residual_shapes
from zstream.sim import simulate
from zstream.sim.config import SimConfig


def test_the_leading_shape_is_the_pattern_that_stays_at_fixed_observed_wavelengths():
    grid = LogGrid()
    rng = np.random.default_rng(3)
    n = 200
    z = rng.uniform(0.1, 3.0, n)
    pattern = np.zeros(grid.n_pixels)
    pattern[5400:6700:37] = 1.0  # narrow residuals at fixed observed pixels, like sky lines
    shift = np.rint(np.log10(1 + z) / grid.step).astype(int)
    X = rng.normal(0.0, 1.0, (n, grid.n_pixels))
    V = np.zeros_like(X)
    for row, s in enumerate(shift):
        rest = slice(5100 - s, 6771 - s)  # the rows cover a MUSE-like observed window
        V[row, rest] = 1.0
        X[row, rest] += rng.normal(0.0, 3.0) * pattern[5100:6771]
    shapes = learn_residual_shapes(X * (V > 0), V, np.zeros_like(X), z, grid)
    window = slice(5100 - shapes.start, 6771 - shapes.start)
    leading = shapes.shapes[0, window]
    assert abs(np.corrcoef(leading, pattern[5100:6771])[0, 1]) > 0.9
    assert learn_residual_shapes(X[: MIN_SPECTRA - 1], V[: MIN_SPECTRA - 1], np.zeros_like(X[: MIN_SPECTRA - 1]),
                                 z[: MIN_SPECTRA - 1], grid) is None


@pytest.fixture(scope="module")
def trained_without_sky():
    """A basis trained on spectra with strong sky residuals (10× the default) but no sky column."""
    training, _ = simulate(160, seed=2718, config=SimConfig(sky_residual_rms=0.1, false_fraction=0.0))
    training.extra = training.extra.drop_columns(["sky"])
    return train_basis(training, {"GALAXY": 4, "QSO": 2, "STAR": 2}, max_iter=25, sequential_iter=5,
                       progress=False, device="cpu", seed=1)


def test_training_without_a_sky_column_stores_shapes_that_survive_the_basis_file(trained_without_sky, tmp_path):
    shapes = ResidualShapes.of_basis(trained_without_sky)
    assert shapes.shapes.shape[0] == 2 and shapes.n_spectra == 160
    save_basis(trained_without_sky, tmp_path / "basis.parquet")
    reloaded = load_basis(tmp_path / "basis.parquet")
    again = ResidualShapes.of_basis(reloaded)
    assert again.start == shapes.start and np.allclose(again.shapes, shapes.shapes)


def test_training_with_a_sky_column_learns_no_shapes():
    training, _ = simulate(60, seed=2720, config=SimConfig(false_fraction=0.0))
    basis = train_basis(training, {"GALAXY": 3, "QSO": 1, "STAR": 1}, max_iter=10, sequential_iter=3, progress=False,
                        device="cpu")
    assert META_KEY not in basis.meta


def _sky_only():
    """Pure sky-residual false detections, without their sky column."""
    sky_only, _ = simulate(24, seed=2719, config=SimConfig(false_fraction=1.0, blend_fraction=0.0,
                                                          false_weights={"false_sky": 1.0}))
    sky_only.extra = sky_only.extra.drop_columns(["sky"])
    return sky_only


def _templates_only(basis):
    return dataclasses.replace(basis, meta={key: value for key, value in basis.meta.items() if key != META_KEY})


def _explained(basis, spectra) -> float:
    """Median ``delta_chi2`` of a scan of ``spectra``: how much of their structure the basis can fit."""
    results = Scanner(basis, ScanConfig(z_step=0.001), device="cpu").scan(spectra)
    return float(np.median(results.column("delta_chi2").to_numpy()))


def test_the_scan_fits_the_learned_shapes_away_from_sky_only_spectra(trained_without_sky):
    """Pure sky residuals, no sky column: the learned shapes explain them, so no template fit can."""
    sky_only = _sky_only()
    assert _explained(trained_without_sky, sky_only) < 0.5 * _explained(_templates_only(trained_without_sky), sky_only)

