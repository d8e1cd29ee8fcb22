"""Each simulated spectrum carries the sky spectrum that was subtracted, consistent with its noise and residuals."""

import numpy as np
import pytest
from sim_builders import recovered_sky_residual_rms

from zstream.sim import SKY_TYPE, SimConfig, simulate


@pytest.fixture(scope="module")
def run():
    return simulate(40, seed=9)


def test_sky_column_is_one_positive_float32_value_per_pixel(run):
    batch, _ = run
    assert batch.extra.schema.field("sky").type == SKY_TYPE
    for flux, sky in zip(batch.flux, batch.extra.column("sky").to_pylist()):
        sky = np.asarray(sky)
        assert sky.shape == flux.shape and np.isfinite(sky).all() and (sky > 0).all()


def test_noise_variance_is_proportional_to_the_sky(run):
    batch, _ = run
    for ivar, sky in zip(batch.ivar, batch.extra.column("sky").to_pylist()):
        good = ivar > 0
        product = ivar[good] * np.asarray(sky)[good]  # 1/σ² ∝ 1/sky: constant along the spectrum
        assert np.ptp(product) < 1e-5 * product.mean()


def test_sky_residuals_scale_with_the_sky_column():
    # fitted on the sky column alone, the residual amplitude comes back at the configured RMS
    assert recovered_sky_residual_rms("muse-deep") == pytest.approx(SimConfig().sky_residual_rms, rel=0.2)
    assert recovered_sky_residual_rms("muse-deep", sky_residual_rms=0.0) < 0.3 * SimConfig().sky_residual_rms


def test_sky_column_can_be_left_out_without_changing_the_spectra(run):
    batch, truth = run
    lean, lean_truth = simulate(40, seed=9, config=SimConfig(write_sky=False))
    assert lean.extra.column_names == ["spectype"]
    assert lean_truth.equals(truth)
    assert all(np.array_equal(a, b) for a, b in zip(lean.flux, batch.flux))
