"""Shared synthetic data for the NMF engine tests."""

from __future__ import annotations

import numpy as np
import pytest

from nmf_problems import make_problem


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
