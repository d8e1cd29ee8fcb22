"""The batched scanner on spectra built from the basis at known redshifts."""

import math

import numpy as np
import pytest

from synthetic import make_basis, make_batch
from zstream.io.records import SpectrumBatch
from zstream.io.schema import RESULT_SCHEMA
from zstream.redshift import ScanConfig, Scanner, ZWarning
from zstream.redshift.fitz import local_minima

CONFIG = ScanConfig(z_step=0.001)  # full 0–6.7 range, half the paper's resolution, to keep tests fast
STAR_FORMING = np.array([0.2, 0.2, 20.0, 0.0, 0.0, 0.0])  # continuum + [OII], Hβ, [OIII], Hα
LYMAN_ALPHA = np.array([0.3, 0.0, 0.0, 25.0, 0.0, 0.0])  # blue continuum + Lyα
OII_ONLY = np.array([0.0, 0.0, 0.0, 0.0, 20.0, 0.0])  # a lone [OII] doublet: Lyα confusion


@pytest.fixture(scope="module")
def basis():
    return make_basis()


@pytest.fixture(scope="module")
def scanner(basis):
    return Scanner(basis, CONFIG, device="cpu")


def pixel_in_z(basis, z):
    """Redshift change of one grid pixel at ``z``."""
    return basis.grid.step * math.log(10) * (1 + z)


def test_noise_free_spectra_are_recovered_to_a_fraction_of_a_pixel(basis, scanner):
    redshifts = [0.351, 1.234, 3.607, 5.123]  # on the trial grid: the coarse minimum is the true one
    coefficients = [STAR_FORMING, STAR_FORMING * 2, LYMAN_ALPHA, LYMAN_ALPHA]
    results = scanner.scan(make_batch(basis, redshifts, coefficients, noise=0.0)).to_pylist()
    for row, z in zip(results, redshifts):
        assert abs(row["z"] - z) < 0.2 * pixel_in_z(basis, z)
        assert row["is_source"]
        assert row["chi2_min"] < 1e-3  # ivar = 1 and no noise: the fit is (nearly) perfect


def test_noisy_spectra_are_recovered_within_their_errors(basis, scanner):
    rng = np.random.default_rng(11)
    redshifts = list(rng.uniform(0.3, 0.85, 6)) + list(rng.uniform(3.0, 6.0, 6))  # [OIII] in range: no [OII]/Lyα confusion
    coefficients = [STAR_FORMING] * 6 + [LYMAN_ALPHA] * 6
    results = scanner.scan(make_batch(basis, redshifts, coefficients, noise=0.002, seed=12)).to_pylist()
    pulls = np.array([(row["z"] - z) / row["z_err"] for row, z in zip(results, redshifts)])
    assert all(row["is_source"] for row in results)
    assert np.all(np.abs(pulls) < 5)
    assert np.mean(np.abs(pulls) < 2) >= 0.75  # roughly Gaussian errors, not just large ones


def test_oii_is_confused_with_lyman_alpha_as_a_secondary_minimum(basis):
    z_true = 0.9
    z_lya = (1 + z_true) * 3727.4 / 1215.67 - 1  # [OII] read as Lyα
    batch = make_batch(basis, [z_true], [OII_ONLY], noise=0.004, seed=13)
    output = Scanner(basis, CONFIG, device="cpu").run(batch, keep_chi2=["s0"])
    row = output.results.to_pylist()[0]
    chi2 = np.asarray(output.curves["chi2"][0].as_py())
    z = np.asarray(output.curves["z"][0].as_py())
    assert abs(row["z"] - z_true) < 0.001
    minima = local_minima(chi2)
    near_lya = minima[np.abs(z[minima] - z_lya) < 0.003]
    assert near_lya.size and chi2[near_lya].min() < np.percentile(chi2, 25) - 5 * np.std(chi2[chi2 <= np.percentile(chi2, 25)])


def test_blend_rescan_finds_the_second_redshift_and_not_a_phantom(basis, scanner):
    single = make_batch(basis, [0.7, 3.3], [STAR_FORMING, LYMAN_ALPHA], noise=0.0)
    mixture_flux = single.flux[0] + single.flux[1]
    noise = np.random.default_rng(14).normal(0, 0.004, mixture_flux.shape).astype(np.float32)
    ivar = np.full(mixture_flux.shape, 1 / 0.004**2, dtype=np.float32)
    clean = make_batch(basis, [0.7], [STAR_FORMING], noise=0.004, seed=15)
    batch = SpectrumBatch(
        ["blend", "clean"], [single.wavelength[0], clean.wavelength[0]], [mixture_flux + noise, clean.flux[0]], [ivar, clean.ivar[0]]
    )
    blend, clean_row = scanner.scan(batch).to_pylist()
    assert blend["is_blend"] and abs(blend["z"] - 0.7) < 0.001 and abs(blend["z_blend"] - 3.3) < 0.005
    assert blend["blend_score"] > CONFIG.blend_delta_chi2
    assert not clean_row["is_blend"] and clean_row["z_blend"] is None
    assert clean_row["blend_score"] < CONFIG.blend_delta_chi2


def test_masked_pixels_are_flagged_and_all_masked_spectra_are_not_sources(basis, scanner):
    batch = make_batch(basis, [1.1, 1.1, 1.1], [STAR_FORMING] * 3, noise=0.004, seed=16)
    batch.flux[1][100:110] = np.nan
    batch.ivar[1][200] = np.inf
    batch.ivar[2][:] = 0.0
    table = scanner.scan(batch)
    assert table.schema.equals(RESULT_SCHEMA)
    clean, holes, empty = table.to_pylist()
    assert not clean["warnings"] & ZWarning.BAD_PIXELS_MASKED
    assert holes["warnings"] & ZWarning.BAD_PIXELS_MASKED and abs(holes["z"] - 1.1) < 0.001
    assert holes["n_pixels_used"] == clean["n_pixels_used"] - 11
    assert empty["warnings"] & ZWarning.ALL_MASKED and not empty["is_source"] and empty["z"] is None
    assert empty["n_pixels_used"] == 0 and empty["basis_version"] == basis.version


def test_results_do_not_depend_on_batch_size(basis):
    rng = np.random.default_rng(17)
    redshifts = list(rng.uniform(0.2, 4.0, 4))
    coefficients = [STAR_FORMING if z < 1.5 else LYMAN_ALPHA for z in redshifts]
    batch = make_batch(basis, redshifts, coefficients, noise=0.006, seed=18)
    tables = [
        Scanner(basis, ScanConfig(z_max=4.5, z_step=0.002, batch_size=size), device="cpu").scan(batch)
        for size in (1, 3)
    ]
    assert tables[0].equals(tables[1])


def test_source_threshold_decides_is_source(basis):
    batch = make_batch(basis, [0.9], [STAR_FORMING * 0.3], noise=0.004, seed=19)
    loose = Scanner(basis, ScanConfig(z_step=0.002, source_log10_delta_chi2=-6.0), device="cpu").scan(batch)
    strict = Scanner(basis, ScanConfig(z_step=0.002, source_log10_delta_chi2=-0.01), device="cpu").scan(batch)
    assert loose["is_source"][0].as_py() and not strict["is_source"][0].as_py()
    assert strict["warnings"][0].as_py() & ZWarning.SMALL_DELTA_CHI2
    assert loose["delta_chi2"][0].as_py() == pytest.approx(strict["delta_chi2"][0].as_py())
