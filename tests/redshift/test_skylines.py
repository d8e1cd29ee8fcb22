"""Sky residuals as a nuisance: shapes fitted with free sign in the scan, removed before training."""

import numpy as np
import pyarrow as pa
import pytest
from synthetic import make_basis, make_batch

from zstream.redshift import ScanConfig, Scanner, train_basis
from zstream.redshift.residual_nuisance import META_KEY as RESIDUAL_META_KEY
from zstream.redshift.skylines import inflated_ivar, orthonormal_nuisance, project_out, residual_shapes
from zstream.sim import simulate
from zstream.sim.config import SimConfig
from zstream.sim.sky import sky_model

WAVELENGTH = np.arange(4600.0, 9350.0 + 0.1, 1.25)


DEPTH = 1e-3


def sky_spectrum() -> np.ndarray:
    """The simulator's MUSE-like sky (continuum + OH lines) on the test wavelengths."""
    return sky_model(4600.0, 9350.0, 1.25, 1.1).flux(DEPTH)


def test_nuisance_is_weighted_orthonormal_and_projection_removes_its_span():
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.5, 2.0, WAVELENGTH.size)
    shapes = residual_shapes(WAVELENGTH, sky_spectrum())
    nuisance = orthonormal_nuisance(np.vstack([shapes, shapes[:1] * 2.0]), weight)  # a dependent row is dropped
    assert nuisance.shape[0] == 2
    np.testing.assert_allclose((nuisance * weight) @ nuisance.T, np.eye(2), atol=1e-10)
    mixed = rng.normal(size=WAVELENGTH.size) + 3.0 * shapes[0] - 2.0 * shapes[1]
    cleaned = project_out(mixed, nuisance, weight)
    np.testing.assert_allclose((cleaned * weight) @ nuisance.T, 0.0, atol=1e-9)


def test_variance_grows_at_sky_lines_only():
    sky = sky_spectrum()
    ivar = sky_model(4600.0, 9350.0, 1.25, 1.1).noise_sigma(DEPTH) ** -2.0  # sky-limited noise
    inflated = inflated_ivar(ivar, sky, 0.05)
    line = np.argmax(sky)  # the brightest sky line
    continuum = np.argmin(np.abs(WAVELENGTH - 5300.0))  # between lines
    assert inflated[line] < 0.5 * ivar[line]
    assert inflated[continuum] == pytest.approx(ivar[continuum], rel=1e-3)


def test_scan_fits_the_sky_residual_away_when_the_sky_is_given():
    basis = make_basis()
    batch = make_batch(basis, [0.62], [np.r_[5.0, 10.0, 30.0, 0, 5.0, 2.0]], noise=2e-3, seed=4)
    sky = sky_spectrum()
    shapes = residual_shapes(WAVELENGTH, sky)
    batch.flux[0] = (batch.flux[0] + 0.05 * shapes[0] + 0.3 * shapes[1]).astype(np.float32)  # scale + shift error
    without = Scanner(basis, ScanConfig(), device="cpu").scan(batch).to_pylist()[0]
    batch.extra = pa.table({"sky": [sky]})
    with_sky = Scanner(basis, ScanConfig(), device="cpu").scan(batch).to_pylist()[0]
    assert with_sky["z"] == pytest.approx(0.62, abs=5e-4)
    assert with_sky["chi2_min"] < 1.1 * with_sky["n_pixels_used"] < without["chi2_min"]


def _sky_trained(batch, keep_sky: bool):
    if not keep_sky:
        batch = batch.take(range(len(batch)))
        batch.extra = batch.extra.drop_columns(["sky"])
    basis = train_basis(batch, {"GALAXY": 4, "QSO": 2, "STAR": 2}, max_iter=25, sequential_iter=5, progress=False,
                        device="cpu", seed=1)
    basis.meta.pop(RESIDUAL_META_KEY, None)  # the templates alone: shapes learned from residuals are tested apart
    return basis


def test_templates_cannot_learn_the_sky_when_training_spectra_carry_it():
    """The z ≈ 5.94 attractor: a template that learned sky residuals fits pure sky residuals at one z.

    Trained on spectra with strong residuals (10× the default), the basis that saw the sky column
    explains pure-sky false detections far less than the basis trained without it.
    """
    training, _ = simulate(160, seed=2718, config=SimConfig(sky_residual_rms=0.1, false_fraction=0.0))
    fixed, broken = _sky_trained(training, keep_sky=True), _sky_trained(training, keep_sky=False)
    sky_only, _ = simulate(24, seed=2719, config=SimConfig(false_fraction=1.0, blend_fraction=0.0,
                                                          false_weights={"false_sky": 1.0}))
    sky_only.extra = sky_only.extra.drop_columns(["sky"])  # the scan itself gets no help

    def explained(basis) -> float:
        results = Scanner(basis, ScanConfig(z_step=0.001), device="cpu").scan(sky_only)
        return float(np.median(results.column("delta_chi2").to_numpy()))

    assert explained(fixed) < 0.5 * explained(broken)
