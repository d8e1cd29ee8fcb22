"""Synthetic NMF problems for the engine tests (a uniquely named module: test directories share one
``conftest`` module name, so helpers are not imported from conftest)."""

from __future__ import annotations

import numpy as np


def make_problem(seed: int = 0, n: int = 60, p: int = 80, k: int = 3, missing: float = 0.3,
                 noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Return (X, V): a rank-k non-negative signal plus noise (so some X < 0), a fraction of weights 0."""
    rng = np.random.default_rng(seed)
    signal = rng.uniform(size=(n, k)) @ np.abs(rng.normal(size=(k, p)))
    X = signal + noise * rng.normal(size=(n, p))
    V = np.full((n, p), 1 / noise**2)
    V[rng.uniform(size=(n, p)) < missing] = 0
    return X, V
