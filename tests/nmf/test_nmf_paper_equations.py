"""The engine reproduces an independent numpy transcription of the paper's equations, iterate for iterate.

The transcription below works in the paper's orientation (X is d×n, W d×q
templates, H q×n coefficients) and applies Eqs. 7/8 (Shift-NMF) and 18/19
(Nearly-NMF) literally; the smoothness terms use the explicit matrices Λ and N
of DᵀD = Λ − N. One iteration is a W (template) step then an H step, as in the engine.
"""

import numpy as np
import pytest

from nmf_problems import make_problem
from zstream.nmf import fit


def _pos(a):
    return np.maximum(a, 0)


def _neg(a):
    return np.maximum(-a, 0)


def paper_iterations(X, V, W, H, n_iter, method, y, lam):
    """X, V: (d, n); W: (d, q); H: (q, n). Returns W, H and χ² + λ‖Wᵀ Dᵀ‖² per iteration."""
    d = X.shape[0]
    D = np.diff(np.eye(d), axis=0)
    laplacian = D.T @ D
    degree = np.diag(np.diag(laplacian))
    adjacency = degree - laplacian
    if method == "clip":
        X = np.maximum(X, 0)
    VX = V * X
    history = []
    for _ in range(n_iter):
        if method == "shift":
            up, down = (V * (X + y)) @ H.T, (V * (W @ H + y)) @ H.T
        else:
            up = _pos(VX @ H.T)
            down = (V * (W @ H)) @ H.T + _neg(VX @ H.T)
        up = up + 2 * lam * adjacency @ W
        down = down + lam * (degree @ W + adjacency @ W)
        W = W * np.where(down > 0, up / np.where(down > 0, down, 1), 1)
        if method == "shift":
            up, down = W.T @ (V * (X + y)), W.T @ (V * (W @ H + y))
        else:
            up = _pos(W.T @ VX)
            down = W.T @ (V * (W @ H)) + _neg(W.T @ VX)
        H = H * np.where(down > 0, up / np.where(down > 0, down, 1), 1)
        history.append(np.sum(V * (X - W @ H) ** 2) + lam * np.sum((D @ W) ** 2))
    return W, H, history


def unit_rms(templates, coefficients):
    rms = np.sqrt(np.mean(templates**2, axis=1))
    return templates / rms[:, None], coefficients * rms[None, :]


@pytest.mark.parametrize("method,lam", [("nearly", 0.0), ("shift", 0.0), ("clip", 0.0), ("nearly", 3.0),
                                        ("shift", 3.0)])
def test_iterates_match_the_paper_equations(method, lam):
    X, V = make_problem(seed=5, n=40, p=50, noise=1.0)
    rng = np.random.default_rng(9)
    templates, coefficients = unit_rms(rng.uniform(size=(3, 50)), rng.uniform(size=(40, 3)))
    y = max(0.0, -X[V > 0].min())
    result = fit(X, V, 3, method=method, smoothness=lam, templates=templates, coefficients=coefficients,
                 max_iter=25, tol=0, dtype="float64", device="cpu")
    W, H, history = paper_iterations(X.T, V.T, templates.T, coefficients.T, 25, method, y, lam)
    expected_templates, expected_coefficients = unit_rms(W.T, H.T)
    np.testing.assert_allclose(result.chi2, history, rtol=1e-8)
    np.testing.assert_allclose(result.templates, expected_templates, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(result.coefficients, expected_coefficients, rtol=1e-8, atol=1e-12)
    assert result.settings["shift"] == (y if method == "shift" else None)
