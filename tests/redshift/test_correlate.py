"""FFT normal equations against direct sums over shifted templates."""

import numpy as np
import pytest
import torch

from zstream.redshift.correlate import ShiftCorrelator, shift_range
from zstream.redshift.fitz import shifted_templates


@pytest.mark.parametrize("start", [0, 300, 900])
def test_correlations_equal_direct_sums(start):
    rng = np.random.default_rng(5)
    templates = rng.random((4, 1000))
    length, shift_lo, shift_hi = 120, 3, 700
    correlator = ShiftCorrelator(torch.as_tensor(templates), start, length, shift_lo, shift_hi)
    flux, weight = rng.normal(size=(2, length)), rng.random((2, length))
    rhs = correlator.rhs(torch.as_tensor(weight * flux)).numpy()
    gram = correlator.gram(torch.as_tensor(weight)).numpy()
    rows, cols = correlator.pairs.numpy()
    for shift in (shift_lo, 17, 450, shift_hi):
        design = shifted_templates(templates, start + np.arange(length, dtype=float), shift)
        for i in range(2):
            np.testing.assert_allclose(rhs[i, :, shift_hi - shift], design @ (weight[i] * flux[i]), atol=1e-9)
            expected = (design * weight[i]) @ design.T
            np.testing.assert_allclose(gram[i, :, shift_hi - shift], expected[rows, cols], atol=1e-9)


def test_fractional_shift_interpolates_between_integer_shifts():
    templates = np.random.default_rng(6).random((2, 50))
    position = 10 + np.arange(20, dtype=float)
    halfway = shifted_templates(templates, position, 3.25)
    expected = 0.75 * shifted_templates(templates, position, 3) + 0.25 * shifted_templates(templates, position, 4)
    np.testing.assert_allclose(halfway, expected)


def test_shift_range_brackets_the_redshift_range():
    step = 2.215525e-5
    lo, hi = shift_range(step, 0.1, 6.7)
    assert lo * step <= np.log10(1.1) < (lo + 1) * step
    assert (hi - 1) * step < np.log10(7.7) <= hi * step
