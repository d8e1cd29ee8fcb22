"""The fast FFT scan against the exhaustive per-redshift reference (scipy NNLS at every trial z)."""

import numpy as np
import pytest

from synthetic import make_basis, make_batch
from zstream.redshift import ScanConfig, Scanner, reference

STAR_FORMING = np.array([0.2, 0.2, 20.0, 0.0, 0.0, 0.0])
LYMAN_ALPHA = np.array([0.3, 0.0, 0.0, 25.0, 0.0, 0.0])
MIXED = np.array([0.3, 0.1, 8.0, 10.0, 2.0, 1.0])

# (trial grid, true redshifts, coefficients): paper resolution on two sub-ranges, to keep the reference quick.
CASES = [
    (ScanConfig(z_min=0.25, z_max=0.85), [0.3123, 0.5551, 0.7809], [STAR_FORMING, MIXED, STAR_FORMING * 0.5]),
    (ScanConfig(z_min=2.95, z_max=4.05), [3.0571, 3.5013, 3.9466], [LYMAN_ALPHA, MIXED, LYMAN_ALPHA * 0.5]),
]


@pytest.fixture(scope="module")
def basis():
    return make_basis()


@pytest.mark.parametrize("config, redshifts, coefficients", CASES)
def test_fast_scan_agrees_with_exhaustive_reference(basis, config, redshifts, coefficients):
    batch = make_batch(basis, redshifts, coefficients, noise=0.003, seed=21)
    output = Scanner(basis, config, device="cpu").run(batch, keep_chi2=batch.spectrum_id)
    for i, row in enumerate(output.results.to_pylist()):
        fast = np.asarray(output.curves["chi2"][i].as_py())
        exact = reference.chi2_curve(
            basis, batch.wavelength[i], batch.flux[i].astype(float), batch.ivar[i].astype(float), config.z_grid
        )
        q1 = np.percentile(exact, 25)
        z_reference = config.z_grid[np.argmin(exact)]
        # same redshift: the refined fast z lies within one trial step (0.0005 (1+z)) of the reference's best
        assert abs(row["z"] - z_reference) <= 0.0005 * (1 + z_reference)
        # same curve: differences (nearest-pixel sampling of the observed pixels) well below the
        # minimum's depth, and within 0.5 % of the baseline everywhere
        assert np.max(np.abs(fast - exact)) < 0.005 * q1
        assert np.max(np.abs(fast - exact)) < 0.1 * (q1 - exact.min())
        assert row["delta_chi2"] == pytest.approx(1 - exact.min() / q1, abs=0.1 * (1 - exact.min() / q1))
        # the refined minimum is at least as good as the reference's best trial redshift
        assert row["chi2_min"] <= exact.min() * (1 + 1e-9)
