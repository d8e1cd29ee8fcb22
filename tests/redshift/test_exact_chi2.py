"""The scan's χ²(z) is the exact fit's at every trial redshift, for bright and continuum-dominated spectra."""

import numpy as np
import pytest
from synthetic import make_basis, make_batch

from zstream.redshift import ScanConfig, Scanner
from zstream.redshift.fitz import exact_fit
from zstream.redshift.observed import prepare_batch
from zstream.redshift.zscan import ShiftTables

CONFIG = ScanConfig(z_min=0.0, z_max=3.6, z_step=0.01, keep_chi2=True)

# (name, z, coefficients of make_basis's templates: blue, red, star-forming, Lyα, [OII], Hα, per-pixel
# noise, whether the spectrum has a feature that fixes z). Flux per Å is the model over ln10·λ ≈ 1.6e4, so a
# continuum coefficient of 900 with noise 5e-5 is S/N ~1,000 per pixel.
CASES = [
    ("qso-like broad Lyα on a blue continuum", 2.9, [900.0, 0.0, 0.0, 60.0, 0.0, 0.0], 5e-5, True),
    ("passive: red continuum edge", 0.25, [0.0, 900.0, 0.0, 0.0, 0.0, 0.0], 5e-5, True),
    ("featureless continuum", 0.0, [300.0, 500.0, 0.0, 0.0, 0.0, 0.0], 5e-5, False),
    ("bright star-forming", 0.4, [20.0, 40.0, 30.0, 0.0, 5.0, 2.0], 1e-4, True),
    ("noisy emitter", 1.1, [10.0, 5.0, 20.0, 0.0, 10.0, 0.0], 4e-3, True),
]


@pytest.fixture(scope="module")
def scanned():
    basis = make_basis()
    batch = make_batch(basis, [c[1] for c in CASES], [np.array(c[2]) for c in CASES], noise=0.0, seed=3)
    rng = np.random.default_rng(11)
    for i, case in enumerate(CASES):  # per-spectrum noise level
        batch.flux[i] = (batch.flux[i] + rng.normal(0.0, case[3], batch.flux[i].size)).astype(np.float32)
        batch.ivar[i] = np.full(batch.flux[i].size, case[3] ** -2.0)
    scanner = Scanner(basis, CONFIG, device="cpu")
    return basis, batch, scanner, scanner.run(batch)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_curve_equals_the_exact_fit_at_every_trial_redshift(scanned, index):
    basis, batch, scanner, output = scanned
    prepared = prepare_batch(batch, basis.grid)
    spectrum = prepared[index]
    galaxy = scanner.classes["GALAXY"]
    tables = ShiftTables.build(galaxy.correlator(spectrum.start, spectrum.length), [spectrum])
    reference = tables.reference_norm2.numpy()[0]
    assert output.curves.column("spectype")[index].as_py() == "GALAXY"
    curve = np.asarray(output.curves.column("chi2")[index].as_py(), dtype=np.float64)
    exact = np.array([exact_fit(galaxy.templates, spectrum, float(s), reference).chi2 for s in galaxy.trial_shift])
    # the stored curve is float32: its own rounding (6e-8) is far inside the 1e-4 tolerance
    tolerance = np.maximum(1e-4 * exact, 0.1)
    assert np.all(np.abs(curve - exact) <= tolerance)


def test_bright_spectra_recover_their_redshift_and_have_bounded_delta_chi2(scanned):
    basis, batch, _, coarse = scanned
    output = Scanner(basis, ScanConfig(keep_chi2=True), device="cpu").run(batch)  # the default trial grid
    for i, (case, row, z_true) in enumerate(zip(CASES, output.results.to_pylist(), batch.z)):
        assert 0.0 <= row["delta_chi2"] <= 1.0
        assert row["chi2_min"] <= min(output.curves.column("chi2")[i].as_py()) * (1 + 1e-6)
        if case[4]:
            assert row["z"] == pytest.approx(z_true, abs=2e-4 * (1 + z_true)), case[0]


def test_robustness_does_not_depend_on_the_last_bits_of_a_plateau_at_q1():
    """Trials where no template overlaps share the nuisance-only χ², up to rounding; when that plateau
    sits at Q1, which of its points enter σ_Q1 must not be decided by their last bits."""
    from zstream.redshift.fitz import score_curve

    rng = np.random.default_rng(12)
    plateau = np.full(300, 6311.16)
    chi2 = np.concatenate([rng.uniform(2800.0, 6300.0, 200), plateau, rng.uniform(6400.0, 9000.0, 700)])
    exact = score_curve(chi2, 2800.0, 3500.0)
    jittered = chi2.copy()
    jittered[200:500] *= 1 + 1e-13 * rng.standard_normal(300)
    assert score_curve(jittered, 2800.0, 3500.0).robustness == pytest.approx(exact.robustness, rel=1e-9)
