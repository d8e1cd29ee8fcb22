"""Shared synthetic data for the NMF engine tests."""

from __future__ import annotations

import numpy as np
import pytest


def make_problem(seed: int = 0, n: int = 60, p: int = 80, k: int = 3, missing: float = 0.3,
                 noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Return (X, V): a rank-k non-negative signal plus noise (so some X < 0), a fraction of weights 0."""
    rng = np.random.default_rng(seed)
    signal = rng.uniform(size=(n, k)) @ np.abs(rng.normal(size=(k, p)))
    X = signal + noise * rng.normal(size=(n, p))
    V = np.full((n, p), 1 / noise**2)
    V[rng.uniform(size=(n, p)) < missing] = 0
    return X, V


@pytest.fixture(scope="session")
def problem_factory():
    """``make_problem`` itself, for module-scoped fixtures (importing ``conftest`` by name is order-dependent)."""
    return make_problem


@pytest.fixture
def problem() -> tuple[np.ndarray, np.ndarray]:
    X, V = make_problem()
    assert (X < 0).any() and (V == 0).any()
    return X, V


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Run the small test problems on one thread: OpenMP spin-waits dominate tiny ops on a busy shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
