"""Warm starts, coefficient-only projection, masking, seeds and the callback."""

import numpy as np

from nmf_problems import make_problem
from zstream.nmf import fit, project


def test_warm_start_from_converged_basis_needs_far_fewer_iterations(problem):
    X, V = problem
    cold = fit(X, V, 3, max_iter=2000, tol=1e-7, dtype="float64")
    assert cold.converged
    warm = fit(X, V, 3, templates=cold.templates, coefficients=cold.coefficients, max_iter=2000, tol=1e-7,
               dtype="float64")
    assert warm.converged
    assert warm.n_iter < cold.n_iter / 10
    assert abs(warm.chi2[-1] - cold.chi2[-1]) < 1e-5 * cold.chi2[-1]


def test_masked_entries_have_no_influence(problem):
    X, V = problem
    changed = X.copy()
    changed[V == 0] = np.random.default_rng(1).normal(scale=1e3, size=int((V == 0).sum()))
    for method in ("nearly", "shift", "clip"):
        first = fit(X, V, 3, method=method, max_iter=50, dtype="float64")
        second = fit(changed, V, 3, method=method, max_iter=50, dtype="float64")
        np.testing.assert_array_equal(first.templates, second.templates)
        np.testing.assert_array_equal(first.coefficients, second.coefficients)


def test_project_fits_coefficients_of_a_fixed_basis(problem):
    X, V = problem
    basis = fit(X, V, 3, max_iter=300, dtype="float64")
    projected = project(X, V, basis.templates, max_iter=500, dtype="float64")
    np.testing.assert_array_equal(projected.templates, basis.templates)
    assert projected.coefficients.shape == (X.shape[0], 3) and (projected.coefficients >= 0).all()
    assert np.diff(projected.chi2).max() <= 0
    assert projected.chi2[-1] <= basis.chi2[-1] * (1 + 1e-6)
    assert projected.settings["update_templates"] is False


def test_same_seed_same_result_other_seed_other_start(problem):
    X, V = problem
    runs = [fit(X, V, 3, max_iter=20, seed=seed, dtype="float64") for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].templates, runs[1].templates)
    assert not np.allclose(runs[0].templates, runs[2].templates)


def test_callback_sees_every_iteration(problem):
    X, V = problem
    seen = []
    result = fit(X, V, 2, max_iter=15, tol=0, callback=lambda iteration, chi2: seen.append((iteration, chi2)))
    assert seen == list(zip(range(1, 16), result.chi2))


def test_normalisation_is_unit_rms_and_float32_agrees_with_float64():
    X, V = make_problem(seed=6)
    single = fit(X, V, 3, max_iter=100, dtype="float32")
    double = fit(X, V, 3, max_iter=100, dtype="float64")
    assert single.templates.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(np.mean(double.templates**2, axis=1)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(single.chi2[-1], double.chi2[-1], rtol=1e-4)
    np.testing.assert_allclose(single.coefficients @ single.templates, double.coefficients @ double.templates,
                               rtol=1e-3, atol=1e-3)
