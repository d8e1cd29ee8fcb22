"""The objective never increases under any update variant (Green & Bailey 2023, Appendices A/B, smoothness majoriser)."""

import numpy as np
import pytest

from nmf_problems import make_bright_problem, make_problem
from zstream.nmf import fit

ROUNDING = {"float32": 1e-6, "float64": 1e-12}
"""Largest relative χ² increase allowed between iterations: rounding of the iterates, not of χ²."""


@pytest.mark.parametrize("method", ["nearly", "shift", "clip"])
@pytest.mark.parametrize("smoothness", [0.0, 5.0])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_objective_never_increases(method, smoothness, seed, dtype):
    X, V = make_problem(seed=seed, missing=0.4, noise=1.0)
    assert (X[V > 0] < 0).mean() > 0.05
    result = fit(X, V, 3, method=method, smoothness=smoothness, max_iter=150, tol=0, seed=seed, dtype=dtype)
    chi2 = np.array(result.chi2)
    assert len(chi2) == 150
    increases = np.diff(chi2) / chi2[:-1]
    assert increases.max() <= ROUNDING[dtype]
    assert chi2[-1] < 0.9 * chi2[0]


@pytest.mark.parametrize("smoothness", [0.0, 5.0])
@pytest.mark.parametrize("snr", [100.0, 1000.0])
def test_float32_objective_never_increases_on_bright_spectra(smoothness, snr):
    """At S/N 100–1000 χ² falls by 10²–10⁵; every one of 400 float32 steps still lowers it."""
    X, V = make_bright_problem(snr=snr)
    result = fit(X, V, 3, smoothness=smoothness, max_iter=400, tol=0, dtype="float32")
    chi2 = np.array(result.chi2)
    assert len(chi2) == 400
    assert (np.diff(chi2) / chi2[:-1]).max() <= ROUNDING["float32"]
    assert chi2[-1] < 0.01 * chi2[0]


def test_smoothness_penalty_makes_templates_smoother():
    X, V = make_problem(seed=3, noise=1.0)
    roughness = {}
    for smoothness in (0.0, 500.0):
        templates = fit(X, V, 3, smoothness=smoothness, max_iter=200, dtype="float64").templates
        roughness[smoothness] = np.sum(np.diff(templates, axis=1) ** 2)
    assert roughness[500.0] < 0.5 * roughness[0.0]


def test_sequential_build_decreases_within_each_stage():
    X, V = make_problem(seed=4)
    result = fit(X, V, 3, sequential=True, sequential_iter=20, max_iter=60, tol=0, dtype="float64")
    assert result.n_iter == 2 * 20 + 60 == len(result.chi2)
    for start, stop in ((0, 20), (20, 40), (40, 100)):
        stage = np.array(result.chi2[start:stop])
        assert np.diff(stage).max() <= 1e-12 * stage[0]
    assert result.chi2[-1] < result.chi2[19]
    assert result.templates.shape == (3, X.shape[1]) and np.isfinite(result.templates).all()


def test_sequential_with_one_template_is_the_plain_fit():
    X, V = make_problem(seed=4)
    sequential = fit(X, V, 1, sequential=True, max_iter=30, dtype="float64")
    plain = fit(X, V, 1, max_iter=30, dtype="float64")
    np.testing.assert_array_equal(sequential.templates, plain.templates)
    assert sequential.chi2 == plain.chi2
