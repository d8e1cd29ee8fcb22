"""The fast FFT scan against the exhaustive per-redshift reference (scipy NNLS at every trial z).

Both do the same work: every class on its trial grid, the sky-residual shapes fitted with free
sign (a projection in the fast path, ± non-negative columns in the reference), the blend rescan.
"""

import numpy as np
import pyarrow as pa
import pytest
from synthetic import MUSE_WAVELENGTH, make_basis, make_batch, two_class_basis

from zstream.redshift import ScanConfig, Scanner, reference
from zstream.redshift.skylines import residual_shapes
from zstream.sim.sky import sky_model

STAR_FORMING = np.array([0.2, 0.2, 20.0, 0.0, 0.0, 0.0])
LYMAN_ALPHA = np.array([0.3, 0.0, 0.0, 25.0, 0.0, 0.0])
MIXED = np.array([0.3, 0.1, 8.0, 10.0, 2.0, 1.0])

# (trial grid, true redshifts, coefficients): two sub-ranges, to keep the reference quick.
CASES = [
    (ScanConfig(z_min=0.25, z_max=0.85), [0.3123, 0.5551], [STAR_FORMING, MIXED]),
    (ScanConfig(z_min=2.95, z_max=4.05), [3.0571, 3.9466], [LYMAN_ALPHA, LYMAN_ALPHA * 0.5]),
]


def with_sky_residuals(batch):
    """The batch plus a sky-subtraction residual (scale and shift error), its sky spectrum in ``sky``."""
    sky = sky_model(4600.0, 9350.0, 1.25, 1.1).flux(1e-3)
    shapes = residual_shapes(MUSE_WAVELENGTH, sky)
    for i in range(len(batch)):
        batch.flux[i] = (batch.flux[i] + 0.03 * shapes[0] + 0.2 * shapes[1]).astype(np.float32)
    batch.extra = pa.table({"sky": [sky] * len(batch)})
    return batch, sky


def assert_same_curve(fast: np.ndarray, exact: np.ndarray) -> None:
    """Equal to the stored float32 precision of the fast curve, well within 1e-4 of χ²."""
    assert fast.shape == exact.shape
    assert np.all(np.abs(fast - exact) <= np.maximum(1e-4 * exact, 0.1))


@pytest.mark.parametrize("config, redshifts, coefficients", CASES)
def test_scan_curve_blend_curve_and_redshift_equal_the_reference(config, redshifts, coefficients):
    basis = make_basis()
    batch, sky = with_sky_residuals(make_batch(basis, redshifts, coefficients, noise=0.003, seed=21))
    output = Scanner(basis, config, device="cpu").run(batch, keep_chi2=batch.spectrum_id)
    for i, row in enumerate(output.results.to_pylist()):
        ref = reference.scan_spectrum(basis, batch.wavelength[i], batch.flux[i], batch.ivar[i], config, sky=sky,
                                      z_model=row["z"])
        np.testing.assert_allclose(output.curves["z"][i].as_py(), ref.z["GALAXY"], rtol=0, atol=1e-12)
        assert_same_curve(np.asarray(output.curves["chi2"][i].as_py()), ref.chi2["GALAXY"])
        assert_same_curve(np.asarray(output.curves["chi2_blend"][i].as_py()), ref.chi2_blend)
        # the refined z lies within one trial step of the reference's best, and is at least as good
        assert abs(row["z"] - ref.z_best) <= config.z_step * (1 + ref.z_best)
        assert row["chi2_min"] <= ref.chi2["GALAXY"].min() * (1 + 1e-9)
        assert row["z"] == pytest.approx(redshifts[i], abs=5e-4 * (1 + redshifts[i]))


def test_classes_are_ranked_as_the_reference_ranks_them():
    basis = two_class_basis()
    config = ScanConfig(z_min=0.0, z_max=0.6, z_step=0.001)
    coefficients = [np.r_[0, 0, 0, 0, 0, 0, 40.0, 10.0], np.r_[5.0, 10.0, 30.0, 0, 5.0, 2.0, 0, 0]]
    batch = make_batch(basis, [0.0005, 0.45], coefficients, noise=2e-4, seed=9)
    output = Scanner(basis, config, device="cpu").run(batch, keep_chi2=batch.spectrum_id)
    for i, row in enumerate(output.results.to_pylist()):
        ref = reference.scan_spectrum(basis, batch.wavelength[i], batch.flux[i], batch.ivar[i], config)
        assert row["spectype"] == ref.spectype == ("STAR", "GALAXY")[i]
        assert_same_curve(np.asarray(output.curves["chi2"][i].as_py()), ref.chi2[ref.spectype])
        assert abs(row["z"] - ref.z_best) <= config.z_step * (1 + ref.z_best)
