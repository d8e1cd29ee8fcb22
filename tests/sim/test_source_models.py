"""source_models gives the exact noise-free source behind each simulated spectrum, and the oracle of
``bench limit`` finds the truth with it, moved or not."""

from dataclasses import replace

import numpy as np

from zstream.bench.limit import oracle_good_fraction, oracle_redshifts
from zstream.sim import SimConfig, simulate, source_models

QUIET = replace(SimConfig(), sky_residual_rms=0.0, offset_fraction=0.0, flatfield_fraction=0.0,
                bad_pixel_fraction=0.0, blend_fraction=0.0)
"""Little but noise on top of the sources."""


def test_each_model_is_the_source_and_false_detections_have_none():
    batch, truth = simulate(60, 11, QUIET)
    models = source_models(60, 11, QUIET)
    for i, model in enumerate(models):
        if not truth.column("is_source")[i].as_py():
            assert model is None
            continue
        assert model.z == truth.column("z")[i].as_py()
        # the spectrum's amount of this model is 1, to within the noise
        weight = batch.ivar[i].astype(np.float64)
        amount = np.sum(weight * batch.flux[i] * model.flux) / np.sum(weight * model.flux**2)
        assert abs(amount - 1.0) < 5.0 / np.sqrt(np.sum(weight * model.flux**2)) + 0.01


def test_oracle_recovers_the_redshift_and_follows_a_moved_source():
    batch, truth = simulate(40, 5, QUIET)
    models = source_models(40, 5, QUIET)
    bright = [i for i, m in enumerate(models) if m is not None and truth.column("source_class")[i].as_py() == "starforming"]
    assert bright
    for i in bright:
        model = models[i]
        exact, with_poly = oracle_redshifts(model, batch.wavelength[i], batch.flux[i], batch.ivar[i], 0.05)
        assert abs(exact - model.z) < 0.001 * (1 + model.z) and abs(with_poly - model.z) < 0.001 * (1 + model.z)
        # the source moved 0.02 (1 + z) to the red: the oracle follows the lines
        wavelength, sigma = batch.wavelength[i], 1 / np.sqrt(batch.ivar[i])
        later = np.interp(wavelength / 1.02, wavelength, model.flux * wavelength) / wavelength
        noisy = later + sigma * np.random.default_rng(i).standard_normal(wavelength.size)
        found, _ = oracle_redshifts(model, wavelength, noisy, batch.ivar[i], 0.05)
        assert abs(found - (1.02 * (1 + model.z) - 1)) < 0.001 * (1 + model.z)


def test_oracle_good_fraction_per_class():
    figures = oracle_good_fraction(40, 5, QUIET, 0.05)
    assert set(figures) <= {"starforming", "oii", "lae", "passive", "star", "qso"}
    assert all(set(by_oracle) == {"exact", "exact+poly"} for by_oracle in figures.values())
    assert figures["starforming"]["exact"] == 1.0
