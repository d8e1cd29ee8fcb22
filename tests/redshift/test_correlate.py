"""FFT normal equations against direct sums over shifted templates."""

import numpy as np
import pytest
import torch

from zstream.redshift.correlate import ShiftCorrelator, shift_range
from zstream.redshift.fitz import shifted_templates
from zstream.redshift.observed import PreparedSpectrum
from zstream.redshift.zwarning import ZWarning


@pytest.mark.parametrize("start", [0, 300, 880])
def test_correlations_equal_direct_sums_over_interpolated_templates(start):
    rng = np.random.default_rng(5)
    templates = rng.random((4, 1000))
    length, shift_lo, shift_hi = 120, 3, 700
    position = np.sort(start + rng.uniform(0, length - 1, 40))  # native pixels between grid points
    spectrum = PreparedSpectrum(start, length, position, rng.normal(size=40), rng.random(40), 1.0, 40, ZWarning(0))
    correlator = ShiftCorrelator(torch.as_tensor(templates), start, length, shift_lo, shift_hi)
    weighted_flux = spectrum.native_weight * spectrum.native_flux
    rhs = correlator.correlate_templates(torch.as_tensor(spectrum.spread(weighted_flux)[None])).numpy()[0]
    same, neighbour = (torch.as_tensor(signal[None]) for signal in spectrum.gram_signals())
    gram = correlator.gram(same, neighbour).numpy()[0]
    rows, cols = correlator.pairs.numpy()
    for shift in (shift_lo, 17, 450, shift_hi):
        design = shifted_templates(templates, position, shift)  # the reference's interpolation
        lag = correlator.lag_of(shift)
        np.testing.assert_allclose(rhs[:, lag], design @ weighted_flux, atol=1e-9)
        expected = (design * spectrum.native_weight) @ design.T
        np.testing.assert_allclose(gram[:, lag], expected[rows, cols], atol=1e-9)


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
