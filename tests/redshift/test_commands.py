"""``zstream fit`` and ``zstream scan`` end to end on small files, and thresholds from TOML."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from synthetic import MUSE_WAVELENGTH, make_basis, make_batch
from zstream.cli import main
from zstream.errors import UserError
from zstream.io.basis import load_basis, save_basis
from zstream.io.files import write_spectra
from zstream.io.results import read_rejects, read_results
from zstream.redshift import ScanConfig
from zstream.redshift.zwarning import ZWarning

STAR_FORMING = np.array([0.2, 0.2, 20.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan")
    basis = make_basis()
    save_basis(basis, folder / "basis.parquet")
    batch = make_batch(basis, [0.41, 0.62, 0.75], [STAR_FORMING] * 3, noise=0.003, seed=31)
    batch.ivar[2][:] = 0.0  # nothing usable: a flagged result, not a reject
    write_spectra(folder / "spectra.parquet", batch)
    return folder, batch


def test_scan_writes_results_rejects_and_kept_curves(files):
    folder, batch = files
    out = folder / "results.parquet"
    code = main([
        "scan", "--input", str(folder / "spectra.parquet"), "--basis", str(folder / "basis.parquet"),
        "--out", str(out), "--z-max", "1.5", "--z-step", "0.001", "--workers", "1", "--batch-size", "2",
        "--keep-chi2", "s1", "--quiet",
    ])
    assert code == 0
    results = read_results(out).to_pylist()
    assert [row["spectrum_id"] for row in results] == batch.spectrum_id  # input order
    assert abs(results[0]["z"] - 0.41) < 0.001 and abs(results[1]["z"] - 0.62) < 0.001
    assert results[2]["warnings"] & ZWarning.ALL_MASKED and not results[2]["is_source"]
    assert read_rejects(folder / "results.rejects.parquet") == []
    curves = pq.read_table(folder / "results.chi2.parquet").to_pylist()
    # 1,501 requested trial z, snapped to whole pixel shifts of the basis grid (a few coincide at high z)
    assert [c["spectrum_id"] for c in curves] == ["s1"] and 1400 < len(curves[0]["chi2"]) == len(curves[0]["z"]) <= 1501


def test_scan_thresholds_file_sets_the_decisions(files, tmp_path):
    folder, _ = files
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("[thresholds]\nsource_log10_delta_chi2 = -0.0001\nblend_delta_chi2 = 0.5\n")
    out = tmp_path / "strict.jsonl"
    assert main([
        "scan", "--input", str(folder / "spectra.parquet"), "--basis", str(folder / "basis.parquet"),
        "--out", str(out), "--z-max", "1.5", "--z-step", "0.001", "--workers", "1", "--quiet",
        "--thresholds", str(thresholds),
    ]) == 0
    assert not any(row["is_source"] for row in read_results(out).to_pylist())


def test_bad_thresholds_file_is_a_one_line_error(tmp_path, capsys):
    thresholds = tmp_path / "bad.toml"
    thresholds.write_text("[thresholds]\nsource_log10_delta_chi = -2\n")
    with pytest.raises(UserError, match="unknown keys"):
        ScanConfig.from_toml(thresholds)
    assert main(["scan", "--input", "x.parquet", "--basis", "b.parquet", "--out", "r.parquet",
                 "--thresholds", str(thresholds)]) == 2
    assert "unknown keys ['source_log10_delta_chi']" in capsys.readouterr().err


def test_thresholds_toml_overrides_defaults(tmp_path):
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[thresholds]\nsource_log10_delta_chi2 = -2.5\nblend_delta_chi2 = 0.02\n")
    config = ScanConfig.from_toml(thresholds, z_step=0.001)
    assert (config.source_log10_delta_chi2, config.blend_delta_chi2, config.z_step) == (-2.5, 0.02, 0.001)


def test_fit_learns_a_basis_from_spectra_with_known_redshift(tmp_path):
    basis = make_basis()
    rng = np.random.default_rng(32)
    redshifts = list(rng.uniform(0.1, 1.0, 12))
    coefficients = [rng.uniform(0.5, 1.5) * STAR_FORMING for _ in redshifts]
    write_spectra(tmp_path / "train.parquet", make_batch(basis, redshifts, coefficients, noise=0.002, seed=33))
    out = tmp_path / "basis.parquet"
    assert main(["fit", "--input", str(tmp_path / "train.parquet"), "--k", "2", "--out", str(out),
                 "--max-iter", "4", "--sequential-iter", "2", "--device", "cpu", "--quiet"]) == 0
    learned = load_basis(out)
    assert learned.templates.shape == (2, basis.grid.n_pixels) and (learned.templates >= 0).all()
    assert learned.meta["n_training_spectra"] == 12


def test_fit_without_known_redshifts_is_a_clear_error(tmp_path, capsys):
    batch = make_batch(make_basis(), [0.5], [STAR_FORMING], noise=0.002)
    batch.z = None
    write_spectra(tmp_path / "unlabelled.parquet", batch)
    assert main(["fit", "--input", str(tmp_path / "unlabelled.parquet"), "--k", "2",
                 "--out", str(tmp_path / "b.parquet"), "--quiet"]) == 2
    assert "none has a known redshift" in capsys.readouterr().err


def test_scan_with_worker_processes_keeps_input_order(files, tmp_path):
    folder, batch = files
    out = tmp_path / "parallel.parquet"
    assert main([
        "scan", "--input", str(folder / "spectra.parquet"), "--basis", str(folder / "basis.parquet"),
        "--out", str(out), "--z-max", "1.0", "--z-step", "0.002", "--workers", "2", "--batch-size", "1", "--quiet",
    ]) == 0
    results = read_results(out).to_pylist()
    assert [row["spectrum_id"] for row in results] == batch.spectrum_id
    assert abs(results[1]["z"] - 0.62) < 0.002


def test_fit_min_coverage_continues_the_edge_over_sparsely_covered_rest_pixels(tmp_path):
    basis = make_basis()
    rng = np.random.default_rng(34)
    redshifts = [0.2] * 6 + [0.9]  # only one spectrum reaches the bluest rest pixels
    coefficients = [rng.uniform(0.5, 1.5) * STAR_FORMING for _ in redshifts]
    write_spectra(tmp_path / "train.parquet", make_batch(basis, redshifts, coefficients, noise=0.002, seed=35))
    out = tmp_path / "basis.parquet"
    assert main(["fit", "--input", str(tmp_path / "train.parquet"), "--k", "2", "--out", str(out),
                 "--max-iter", "4", "--sequential-iter", "2", "--min-coverage", "2", "--device", "cpu",
                 "--quiet"]) == 0
    learned = load_basis(out)
    blue_only = basis.grid.wavelength < MUSE_WAVELENGTH[0] / 1.2 - 1.0  # covered by the z = 0.9 spectrum alone
    covered = (basis.grid.wavelength > MUSE_WAVELENGTH[0] / 1.2 + 1.0) & (basis.grid.wavelength < MUSE_WAVELENGTH[-1] / 1.9)
    assert blue_only.any() and learned.meta["fits"]["GALAXY"]["n_masked_pixels"] >= blue_only.sum()
    # no spike learned from the single spectrum there: each template is flat, at its covered edge's level
    blue = learned.templates[:, blue_only]
    np.testing.assert_array_equal(blue, np.repeat(blue[:, :1], blue.shape[1], axis=1))
    assert (learned.templates[:, covered] > 0).any()


def test_default_coverage_floor_keeps_what_k_spectra_cover_in_a_rare_class():
    """A rare class (122 training QSOs, k = 4) keeps rest pixels that only its few low-z members reach
    (Hα below z ≈ 0.42 in MUSE); a common one still needs 50 spectra, and no floor is below k."""
    from zstream.redshift.train import MAX_MIN_COVERAGE, coverage_floor

    assert coverage_floor(122, 4) == 4
    assert coverage_floor(1479, 10) == MAX_MIN_COVERAGE
    assert coverage_floor(30, 5) == 5
    assert all(coverage_floor(n, 3) <= coverage_floor(n + 50, 3) for n in range(0, 2000, 50))
