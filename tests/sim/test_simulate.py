"""The simulator is deterministic, its truth table agrees with its spectra, and lines sit at the true z."""

from dataclasses import replace

import numpy as np
import pytest

from zstream.sim import FALSE_CLASSES, SOURCE_CLASSES, SimConfig, simulate
from zstream.sim import lines
from zstream.sim.simulate import MIN_BLEND_SEPARATION


@pytest.fixture(scope="module")
def default_run():
    return simulate(200, seed=11)


def test_same_seed_gives_identical_output_and_other_seed_differs(default_run):
    batch, truth = default_run
    again, truth_again = simulate(200, seed=11)
    assert truth.equals(truth_again)
    assert all(np.array_equal(a, b) for a, b in zip(batch.flux, again.flux))
    assert all(np.array_equal(a, b) for a, b in zip(batch.ivar, again.ivar))
    other, _ = simulate(200, seed=12)
    assert not np.array_equal(batch.flux[0], other.flux[0])


def test_truth_table_is_consistent_with_roles_and_batch(default_run):
    batch, truth = default_run
    rows = truth.to_pylist()
    config = SimConfig()
    assert [row["spectrum_id"] for row in rows] == batch.spectrum_id
    assert sum(not row["is_source"] for row in rows) == round(200 * config.false_fraction)
    assert sum(row["is_blend"] for row in rows) == round(200 * config.blend_fraction)
    for row, z in zip(rows, batch.z):
        if row["is_source"]:
            assert row["source_class"] in SOURCE_CLASSES
            assert row["z"] == z
        else:
            assert row["source_class"] in FALSE_CLASSES
            assert row["z"] is None and np.isnan(z) and not row["is_blend"]
        if row["is_blend"]:
            assert abs(row["z2"] - row["z"]) >= MIN_BLEND_SEPARATION * (1 + row["z"])
            assert config.blend_ratio_range[0] <= row["flux_ratio"] <= config.blend_ratio_range[1]
        else:
            assert row["z2"] is None


def test_spectra_share_the_muse_grid_and_flag_bad_pixels(default_run):
    batch, _ = default_run
    wave = batch.wavelength[0]
    assert wave[0] == 4600.0 and wave[-1] == pytest.approx(9350.0) and np.allclose(np.diff(wave), 1.25)
    ivar = np.stack(batch.ivar)
    assert ivar.shape == (200, wave.size) and (ivar >= 0).all() and (ivar == 0).any()
    assert np.isfinite(np.stack(batch.flux)).all()


def test_additive_systematics_make_some_spectra_negative(default_run):
    batch, _ = default_run
    medians = np.array([np.median(flux[ivar > 0]) for flux, ivar in zip(batch.flux, batch.ivar)])
    assert 0 < (medians < 0).sum() < len(medians) / 2


def _bright_single_class(name: str, n: int = 12) -> SimConfig:
    return SimConfig(
        false_fraction=0.0, blend_fraction=0.0, class_weights={name: 1.0}, line_snr_median=3000.0, line_snr_dex=0.0,
        cont_snr_median=300.0, cont_snr_dex=0.0, sky_residual_rms=0.0, offset_fraction=0.0, flatfield_fraction=0.0,
    )


@pytest.mark.parametrize(
    ("name", "rest_lines", "tolerance"),
    [
        ("oii", [lines.O_II_3726, lines.O_II_3729], 1.5),
        ("starforming", [lines.H_ALPHA, lines.O_III_5007, lines.O_II_3729, lines.O_II_3726, lines.H_BETA], 1.5),
        ("lae", [lines.LY_ALPHA], 4.0),
    ],
)
def test_brightest_emission_sits_at_a_rest_line_times_one_plus_z(name, rest_lines, tolerance):
    batch, truth = simulate(12, seed=5, config=_bright_single_class(name))
    for flux, ivar, wave, z in zip(batch.flux, batch.ivar, batch.wavelength, truth.column("z").to_numpy()):
        peak = wave[np.argmax(np.where(ivar > 0, flux, -np.inf))]
        distances = np.abs(np.asarray(rest_lines) * (1 + z) - peak)
        assert distances.min() < tolerance, f"{name} z={z:.4f}: peak at {peak:.1f} Å"


def test_passive_galaxies_show_the_4000_angstrom_break_at_their_redshift():
    batch, truth = simulate(12, seed=6, config=_bright_single_class("passive"))
    for flux, wave, z in zip(batch.flux, batch.wavelength, truth.column("z").to_numpy()):
        rest = wave / (1 + z)
        blue, red = (rest > 3850) & (rest < 3950), (rest > 4000) & (rest < 4100)
        if blue.sum() > 20 and red.sum() > 20:
            assert np.median(flux[red]) > 1.3 * np.median(flux[blue])


def test_invalid_config_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="false_fraction"):
        SimConfig(false_fraction=0.8, blend_fraction=0.5)
    with pytest.raises(ValueError, match="class_weights"):
        SimConfig(class_weights={"dragons": 1.0})
    with pytest.raises(ValueError, match="n must be"):
        simulate(0, seed=1)


def test_custom_grid_is_respected():
    config = replace(SimConfig(), wavelength_min=5000.0, wavelength_max=6000.0, pixel_size=2.0)
    batch, _ = simulate(3, seed=1, config=config)
    assert batch.wavelength[0].size == 501 and batch.flux[0].size == 501
