"""The ``wide`` population differs from ``muse-deep`` in the documented ways and is as deterministic."""

import numpy as np
import pytest
from sim_builders import bright_single_class, recovered_sky_residual_rms

from zstream.sim import PRESETS, LineRatioRanges, SimConfig, lines, simulate


@pytest.fixture(scope="module")
def populations():
    """800 spectra of each population, same seed."""
    return {name: simulate(800, seed=21, config=SimConfig.preset(name)) for name in PRESETS}


def _single_sources(truth) -> list[dict]:
    return [row for row in truth.to_pylist() if row["is_source"] and not row["is_blend"]]


def test_presets_are_named_and_muse_deep_is_the_default():
    assert PRESETS == ("muse-deep", "wide")
    assert SimConfig.preset("muse-deep") == SimConfig()
    assert SimConfig.preset("wide", blend_fraction=0.2).blend_fraction == 0.2
    with pytest.raises(ValueError, match="unknown population 'deep'.*muse-deep, wide"):
        SimConfig.preset("deep")


def test_wide_has_more_stars_and_quasars_and_fewer_lyman_alpha_emitters(populations):
    wide = SimConfig.preset("wide")
    fractions = {}
    for name, (_, truth) in populations.items():
        classes = [row["source_class"] for row in _single_sources(truth)]
        fractions[name] = {cls: classes.count(cls) / len(classes) for cls in wide.class_weights}
    for cls in ("star", "qso", "lae"):
        assert fractions["wide"][cls] == pytest.approx(wide.class_weights[cls], abs=0.04), cls
    assert fractions["wide"]["star"] + fractions["wide"]["qso"] > 1.6 * (
        fractions["muse-deep"]["star"] + fractions["muse-deep"]["qso"]
    )
    assert fractions["wide"]["lae"] < 0.6 * fractions["muse-deep"]["lae"]
    spectypes = {name: [row["spectype"] for row in _single_sources(truth)] for name, (_, truth) in populations.items()}
    assert spectypes["wide"].count("GALAXY") / len(spectypes["wide"]) < 0.8 < (
        spectypes["muse-deep"].count("GALAXY") / len(spectypes["muse-deep"])
    )


@pytest.mark.parametrize(("column", "classes"), [("line_snr", None), ("cont_snr", ("passive", "star"))])
def test_wide_sources_are_brighter_with_a_wider_spread(populations, column, classes):
    stats = {}
    for name, (_, truth) in populations.items():
        values = np.array([row[column] for row in _single_sources(truth)
                           if row[column] is not None and (classes is None or row["source_class"] in classes)])
        stats[name] = (np.median(values), np.std(np.log10(values)))
    prefix = column.split("_")[0]
    for name, (median, dex) in stats.items():
        config = SimConfig.preset(name)
        # the floors (S/N 5 and 1) clip the faint tail, so the spread comes out a little narrower
        assert median == pytest.approx(getattr(config, f"{prefix}_snr_median"), rel=0.15), name
        assert dex == pytest.approx(getattr(config, f"{prefix}_snr_dex"), rel=0.15), name
    assert stats["wide"][0] > 1.25 * stats["muse-deep"][0]
    assert stats["wide"][1] > stats["muse-deep"][1] + 0.08


def test_wide_has_stronger_sky_residuals():
    assert SimConfig.preset("wide").sky_residual_rms == 2.5 * SimConfig().sky_residual_rms
    assert recovered_sky_residual_rms("wide") == pytest.approx(SimConfig.preset("wide").sky_residual_rms, rel=0.2)
    assert recovered_sky_residual_rms("wide") > 2 * recovered_sky_residual_rms("muse-deep")


def test_wide_has_other_line_ratio_ranges():
    default, wide = LineRatioRanges(), SimConfig.preset("wide").line_ratios
    assert default == SimConfig().line_ratios
    for name in ("balmer_attenuation", "n_ii_h_alpha", "s_ii_h_alpha", "log_o_iii_h_beta", "o_ii_h_beta_oii"):
        (low, high), (wide_low, wide_high) = getattr(default, name), getattr(wide, name)
        assert wide_high - wide_low > high - low and (wide_low, wide_high) != (low, high), name


@pytest.mark.parametrize("ratio", [0.1, 0.5])
def test_line_ratio_ranges_set_the_simulated_line_ratios(ratio):
    config = bright_single_class("starforming", line_ratios=LineRatioRanges(n_ii_h_alpha=(ratio, ratio)))
    batch, truth = simulate(16, seed=8, config=config)
    measured = []
    for flux, wave, z in zip(batch.flux, batch.wavelength, truth.column("z").to_numpy()):
        rest = wave / (1 + z)
        if rest[-1] < lines.N_II_6583 + 10:
            continue
        continuum = np.median(flux[(rest > 6610) & (rest < 6700)])  # between [NII] 6583 and [SII] 6716
        peak = {line: flux[np.abs(rest - line) < 2].max() - continuum for line in (lines.H_ALPHA, lines.N_II_6583)}
        measured.append(peak[lines.N_II_6583] / peak[lines.H_ALPHA])
    assert len(measured) >= 5
    assert measured == pytest.approx([ratio] * len(measured), rel=0.1)


def test_invalid_line_ratio_range_is_refused_with_its_name():
    with pytest.raises(ValueError, match="n_ii_h_alpha"):
        LineRatioRanges(n_ii_h_alpha=(0.4, 0.1))
    with pytest.raises(ValueError, match="s_ii_h_alpha"):
        LineRatioRanges(s_ii_h_alpha=(0.0, 0.1))
    LineRatioRanges(log_o_iii_h_beta=(-1.0, -0.5))  # a log ratio may be negative


def test_wide_is_deterministic_and_differs_from_muse_deep(populations):
    batch, truth = populations["wide"]
    again, truth_again = simulate(800, seed=21, config=SimConfig.preset("wide"))
    assert truth.equals(truth_again)
    assert all(np.array_equal(a, b) for a, b in zip(batch.flux, again.flux))
    deep_batch, _ = populations["muse-deep"]
    assert sum(not np.array_equal(a, b) for a, b in zip(batch.flux, deep_batch.flux)) > 700
