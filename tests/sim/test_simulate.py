"""The simulator is deterministic, its truth table agrees with its spectra, and lines sit at the true z."""

from dataclasses import replace

import numpy as np
import pytest
from sim_builders import bright_single_class

from zstream.sim import BLEND_CLASSES, FALSE_CLASSES, SOURCE_CLASSES, SPECTYPES, SimConfig, simulate
from zstream.sim import lines
from zstream.sim.generate import MIN_BLEND_SEPARATION

# (source_class, z, float64 sum of the float32 flux) of simulate(24, seed=2026), recorded before
# spectype, sky and the line-ratio settings were added: the default simulation must not change.
DEFAULT_REFERENCE = [
    ("false_cosmic", None, -118.48681052608299), ("false_flatfield", None, 231.92799953286885),
    ("oii", 0.30982174653234723, 187.0448969547433), ("false_noise", None, 394.7024438804947),
    ("starforming", 0.5531004489900367, 1891.674885702072), ("starforming", 0.22249556059025385, 463.0752403020306),
    ("lae", 4.148405066966599, 276.5868375859427), ("starforming", 0.5056628392031222, 28439.18565300107),
    ("qso", 2.012953011044927, 4492.031035751533), ("lae", 3.240024741957137, 6778.606893092627),
    ("starforming", 0.05672700298924178, 9460.3902400136), ("oii", 1.0916594501459647, 975.6920163161121),
    ("passive", 0.6106141182135959, 8139.6640837797895), ("lae", 4.189717083319086, 1750.1399248395173),
    ("qso", 3.444105681539767, 4495.4664422598435), ("starforming", 0.04270803352262121, 2191.985736099661),
    ("starforming", 0.018967578013857147, 3362.7104344012914), ("passive", 0.5661234722196181, 17366.114462872152),
    ("lae", 3.3890747992788715, 44.643073306346196), ("lae", 4.682348439170116, 230.65330807950522),
    ("star", 0.0007715062968656542, 4392.339742748463), ("false_flatfield", None, 32.1293585977628),
    ("oii", 1.1229224518699346, 1489.8993182706363), ("lae", 6.227994546895162, 466.9618481612997),
]


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


def test_default_simulation_is_unchanged_by_the_new_settings():
    batch, truth = simulate(24, seed=2026)
    measured = [
        (row["source_class"], row["z"], float(np.sum(flux, dtype=np.float64)))
        for row, flux in zip(truth.to_pylist(), batch.flux)
    ]
    assert [(name, z) for name, z, _ in measured] == [(name, z) for name, z, _ in DEFAULT_REFERENCE]
    assert [total for *_, total in measured] == pytest.approx([total for *_, total in DEFAULT_REFERENCE], rel=1e-6)


def test_spectype_follows_the_class_in_truth_and_spectra(default_run):
    batch, truth = default_run
    rows = truth.to_pylist()
    assert SPECTYPES == {"starforming": "GALAXY", "oii": "GALAXY", "lae": "GALAXY", "passive": "GALAXY",
                         "star": "STAR", "qso": "QSO"}
    for row in rows:
        expected = SPECTYPES[row["source_class"]] if row["is_source"] else None
        assert row["spectype"] == expected
    blends = [row for row in rows if row["is_blend"]]
    assert blends, "the default run holds blends"
    for row in blends:  # the brighter component, always a line emitter
        assert row["source_class"] in BLEND_CLASSES and row["spectype"] == "GALAXY"
    assert {row["spectype"] for row in rows} == {"GALAXY", "QSO", "STAR", None}
    assert batch.extra.column("spectype").to_pylist() == truth.column("spectype").to_pylist()


def test_truth_table_is_consistent_with_roles_and_batch(default_run):
    batch, truth = default_run
    rows = truth.to_pylist()
    config = SimConfig()
    assert [row["spectrum_id"] for row in rows] == batch.spectrum_id
    assert sum(not row["is_source"] for row in rows) == round(200 * config.false_fraction)
    assert sum(row["is_blend"] for row in rows) == round(200 * config.blend_fraction) > 0
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


@pytest.mark.parametrize(
    ("name", "rest_lines", "tolerance"),
    [
        ("oii", [lines.O_II_3726, lines.O_II_3729], 1.5),
        ("starforming", [lines.H_ALPHA, lines.O_III_5007, lines.O_II_3729, lines.O_II_3726, lines.H_BETA], 1.5),
        ("lae", [lines.LY_ALPHA], 4.0),
    ],
)
def test_brightest_emission_sits_at_a_rest_line_times_one_plus_z(name, rest_lines, tolerance):
    batch, truth = simulate(12, seed=5, config=bright_single_class(name))
    for flux, ivar, wave, z in zip(batch.flux, batch.ivar, batch.wavelength, truth.column("z").to_numpy()):
        peak = wave[np.argmax(np.where(ivar > 0, flux, -np.inf))]
        distances = np.abs(np.asarray(rest_lines) * (1 + z) - peak)
        assert distances.min() < tolerance, f"{name} z={z:.4f}: peak at {peak:.1f} Å"


def test_passive_galaxies_show_the_4000_angstrom_break_at_their_redshift():
    batch, truth = simulate(12, seed=6, config=bright_single_class("passive"))
    z = truth.column("z").to_numpy()
    wave = batch.wavelength[0]
    on_grid = (3850 * (1 + z) > wave[0]) & (4100 * (1 + z) < wave[-1])  # both windows observed
    assert on_grid.sum() >= 6, f"only {on_grid.sum()} of 12 breaks on the grid: choose another seed"
    for index in np.flatnonzero(on_grid):
        flux, rest = batch.flux[index], wave / (1 + z[index])
        blue, red = (rest > 3850) & (rest < 3950), (rest > 4000) & (rest < 4100)
        assert np.median(flux[red]) > 1.3 * np.median(flux[blue]), f"z={z[index]:.3f}"


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
