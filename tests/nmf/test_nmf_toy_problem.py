"""The toy problem of Green & Bailey 2023 (Sects. I and III.A).

Clipping biases the line-free wings upward; Nearly- and Shift-NMF do not.
"""

import numpy as np
import pytest

from zstream.nmf import fit


@pytest.fixture(scope="module")
def toy():
    """500 exposures of a two-Gaussian feature (height ratio 1:2..2:1), Poisson + Gaussian noise."""
    rng = np.random.default_rng(3)
    pixels = np.arange(200)
    left, right = (np.exp(-0.5 * ((pixels - centre) / 6.0) ** 2) for centre in (85, 115))
    ratio = rng.uniform(0.5, 2.0, size=500)
    truth = 20 * (ratio[:, None] * left[None, :] + right[None, :])
    sigma = rng.uniform(1.0, 3.0, size=truth.shape)
    X = rng.poisson(truth) + sigma * rng.normal(size=truth.shape)
    V = 1 / (sigma**2 + truth)
    wings = np.abs(pixels - 100) > 50
    return X, V, truth, wings, sigma[:, wings].mean()


@pytest.fixture(scope="module")
def wing_offsets(toy):
    X, V, _, wings, _ = toy
    offsets = {}
    for method in ("clip", "nearly", "shift"):
        result = fit(X, V, 2, method=method, max_iter=200, dtype="float64")
        offsets[method] = (result.coefficients @ result.templates)[:, wings].mean()
    return offsets


def test_toy_data_has_negative_wings(toy):
    X, _, _, wings, _ = toy
    assert (X[:, wings] < 0).mean() > 0.4


def test_clipped_nmf_has_positive_offset_in_the_wings(toy, wing_offsets):
    sigma = toy[4]
    assert wing_offsets["clip"] > 0.2 * sigma


@pytest.mark.parametrize("method", ["nearly", "shift"])
def test_nearly_and_shift_nmf_have_no_wing_offset(toy, wing_offsets, method):
    sigma = toy[4]
    assert abs(wing_offsets[method]) < 0.05 * sigma
    assert abs(wing_offsets[method]) < 0.15 * wing_offsets["clip"]
