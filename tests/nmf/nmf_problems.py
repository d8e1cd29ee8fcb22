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


def make_bright_problem(seed: int = 0, n: int = 40, p: int = 120, k: int = 3, snr: float = 100.0,
                        missing: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Return (X, V) with unit noise and mean S/N ``snr`` per pixel: k Gaussian lines on a flat continuum.

    Such fits converge in a few hundred iterations, and at S/N ≥ 100 the terms of an expanded
    χ² = Σ V X² − 2 Σ C∘g + Σ cᵀGc are ≥ 10⁴ times χ², which float32 cannot resolve.
    """
    rng = np.random.default_rng(seed)
    pixels = np.linspace(0, 1, p)
    templates = np.exp(-0.5 * ((pixels[None, :] - rng.uniform(size=(k, 1))) / 0.08) ** 2) + 0.3
    signal = rng.uniform(0.2, 1.0, size=(n, k)) @ templates
    X = signal * (snr / signal.mean()) + rng.normal(size=signal.shape)
    V = np.where(rng.uniform(size=X.shape) < missing, 0.0, 1.0)
    return X, V
