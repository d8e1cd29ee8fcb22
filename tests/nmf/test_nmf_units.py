"""fit(a X, V / a²) is fit(X, V) for any flux unit a: same templates, χ² and convergence, coefficients × a.

Spectra arrive in physical units (flux ~1e-20 erg/s/cm²/Å, ivar ~1e40) as well as in counts; a from
1e-25 to 1e8 spans both, and ivar up to 1e50 is far beyond float32, so the engine must normalise in
float64 before it casts.
"""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nmf_problems import make_bright_problem, make_problem
from zstream.nmf import fit

VARIANTS = {
    "nearly": (make_problem(seed=8), 3, dict(max_iter=500)),
    "shift": (make_problem(seed=8), 3, dict(method="shift", max_iter=100)),
    "smooth": (make_problem(seed=8), 3, dict(smoothness=2.0, max_iter=100)),
    "bright": (make_bright_problem(k=2, snr=1000.0), 2, dict(max_iter=1000)),
}
UNITS = settings(max_examples=5, deadline=None, derandomize=True, database=None)


@pytest.fixture(scope="module")
def in_counts():
    """Each variant fitted in the units it was made in (a = 1), float32 and float64."""
    return {(name, dtype): fit(X, V, k, dtype=dtype, **kwargs)
            for name, ((X, V), k, kwargs) in VARIANTS.items() for dtype in ("float32", "float64")}


def refit(name: str, a: float, dtype: str, **overrides):
    (X, V), k, kwargs = VARIANTS[name]
    return fit(a * X, V / a**2, k, dtype=dtype, **{**kwargs, **overrides})


AGREEMENT = {"float64": dict(rtol=1e-10, chi2=1e-12, stop=0.0), "float32": dict(rtol=1e-3, chi2=1e-4, stop=0.05)}
"""float64 agrees to rounding; float32 rounding may move a converged fit's stop by a few % of its iterations."""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", VARIANTS)
@UNITS
@given(log10_a=st.floats(-25, 8))
@example(log10_a=-25.0)
@example(log10_a=8.0)
def test_fit_is_the_same_in_any_units(in_counts, name, dtype, log10_a):
    a, agreement = 10.0**log10_a, AGREEMENT[dtype]
    base, scaled = in_counts[name, dtype], refit(name, a, dtype)
    assert np.isfinite(scaled.templates).all() and np.isfinite(scaled.coefficients).all()
    assert scaled.converged == base.converged
    assert abs(scaled.n_iter - base.n_iter) <= agreement["stop"] * base.n_iter
    common = min(scaled.n_iter, base.n_iter)
    np.testing.assert_allclose(scaled.chi2[:common], base.chi2[:common], rtol=agreement["chi2"])
    np.testing.assert_allclose(scaled.templates, base.templates, rtol=agreement["rtol"], atol=agreement["rtol"])
    np.testing.assert_allclose(scaled.coefficients / a, base.coefficients, rtol=agreement["rtol"],
                               atol=agreement["rtol"] * base.coefficients.max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("a", [2.0**-80, 2.0**-7, 2.0**26])
def test_power_of_two_units_change_no_digit(in_counts, dtype, a):
    """The internal unit is a power of two, so rescaling by one is exact: every digit agrees.

    (Coefficients that are subnormal in one of the two units are rounded there: hence ``atol``.)
    """
    base, scaled = in_counts["nearly", dtype], refit("nearly", a, dtype)
    assert scaled.chi2 == base.chi2 and scaled.n_iter == base.n_iter
    np.testing.assert_array_equal(scaled.templates, base.templates)
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(scaled.coefficients, base.coefficients * a, rtol=0, atol=a * tiny)


def test_warm_start_coefficients_and_shift_are_in_the_callers_units():
    (X, V), k, _ = VARIANTS["shift"]
    a = 1e-19
    start = fit(X, V, k, max_iter=50, dtype="float64")
    base = fit(X, V, k, method="shift", shift=3.0, templates=start.templates, coefficients=start.coefficients,
               max_iter=40, tol=0, dtype="float64")
    scaled = fit(a * X, V / a**2, k, method="shift", shift=3.0 * a, templates=start.templates,
                 coefficients=a * start.coefficients, max_iter=40, tol=0, dtype="float64")
    assert scaled.settings["shift"] == 3.0 * a
    np.testing.assert_allclose(scaled.chi2, base.chi2, rtol=1e-12)
    np.testing.assert_allclose(scaled.coefficients / a, base.coefficients, rtol=1e-10, atol=1e-12)
