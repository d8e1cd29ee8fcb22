"""No result depends on the units of flux and ivar: flux → a·flux, ivar → ivar/a² for a in 1e-25 … 1e8."""

import numpy as np
import pyarrow as pa
import pytest
from synthetic import make_basis

from zstream.io import SpectrumBatch
from zstream.redshift import ScanConfig, Scanner, train_basis
from zstream.sim import simulate

SCALES = sorted(10.0 ** np.random.default_rng(2026).uniform(-25, 8, 5)) + [1e-25, 1e8]
"""Seeded log-uniform draws over the whole range, plus its ends (physical units are ~1e-20)."""

EXACT_COLUMNS = ("is_source", "is_blend", "warnings", "n_pixels_used")
CLOSE_COLUMNS = ("z", "z_err", "chi2_min", "delta_chi2", "robustness", "blend_score")


def scaled(batch: SpectrumBatch, a: float) -> SpectrumBatch:
    """``batch`` in other units (flux, ivar and the sky spectrum), in float64 so only the scan's arithmetic differs."""
    out = batch.take(range(len(batch)))
    out.flux = [a * f.astype(np.float64) for f in batch.flux]
    out.ivar = [v.astype(np.float64) / a**2 for v in batch.ivar]
    skies = [a * np.asarray(sky, dtype=np.float64) for sky in batch.extra.column("sky").to_pylist()]
    out.extra = batch.extra.set_column(batch.extra.schema.get_field_index("sky"), "sky", pa.array(skies))
    return out


@pytest.fixture(scope="module")
def spectra():
    batch, _ = simulate(10, seed=5150)
    return batch


@pytest.fixture(scope="module")
def reference(spectra):
    scanner = Scanner(make_basis(), ScanConfig(z_step=0.001), device="cpu")
    return scanner, scanner.scan(scaled(spectra, 1.0)).to_pylist()


@pytest.mark.parametrize("a", SCALES, ids=lambda a: f"a={a:.2g}")
def test_scan_results_do_not_depend_on_units(spectra, reference, a):
    scanner, expected = reference
    got = scanner.scan(scaled(spectra, a)).to_pylist()
    for row, want in zip(got, expected, strict=True):
        assert not row["warnings"] & 16, "a spectrum with usable pixels came back all masked"
        for name in EXACT_COLUMNS:
            assert row[name] == want[name], name
        for name in CLOSE_COLUMNS:
            if want[name] is None:
                assert row[name] is None, name
            else:
                assert row[name] == pytest.approx(want[name], rel=1e-9, abs=1e-6), name
        np.testing.assert_allclose(np.asarray(row["coefficients"]) / a, want["coefficients"], rtol=1e-5, atol=1e-30)


def test_trained_basis_does_not_depend_on_units(spectra):
    settings = dict(k=2, max_iter=15, sequential_iter=5, progress=False, device="cpu", dtype="float64")
    expected = train_basis(spectra, **settings).templates
    for a in (1e-20, 1e6):
        np.testing.assert_allclose(train_basis(scaled(spectra, a), **settings).templates, expected, rtol=1e-4, atol=1e-6)
