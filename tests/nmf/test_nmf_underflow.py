"""float32 fits stay finite when a zero entry meets a denominator that underflows to a subnormal.

Found on 2,000 simulated rest-frame spectra (k=10, sequential): a template entry
that Nearly-NMF had set to exactly 0 (its projection was negative) later had a
positive numerator over a denominator of ~1e-42, a Gram cross term of near-zero
coefficients at a pixel only three spectra cover. The ratio overflowed to inf
in float32 and 0 · inf turned the entry into NaN. These problems rebuild that
state in one pixel, for the template step and for the coefficient step.
"""

import numpy as np
import pytest

from zstream.nmf import fit

TINY = 1e-39
"""Subnormal in float32: numerator / (TINY · 1) exceeds float32's largest value."""


def _template_step_case():
    """Template 0 is 0 at pixel 0, the only spectrum there has coefficients (1, TINY)."""
    templates = np.array([[0.0, *[np.sqrt(4 / 3)] * 3], [1.0] * 4])
    coefficients = np.array([[1.0, TINY], [1.0, 1.0]])
    X = np.ones((2, 4))
    V = np.ones((2, 4))
    V[1, 0] = 0
    return X, V, {"templates": templates, "coefficients": coefficients}


def _coefficient_step_case():
    """Coefficient 0 of spectrum 0 is 0; template 1 is TINY where template 0 has all its weight."""
    templates = np.array([[1.0, 0.0], [TINY, 1.0]])
    coefficients = np.array([[0.0, 1.0], [1.0, 1.0]])
    return np.ones((2, 2)), np.ones((2, 2)), {"templates": templates, "coefficients": coefficients,
                                              "update_templates": False}


@pytest.mark.parametrize("case", [_template_step_case, _coefficient_step_case])
def test_zero_entry_over_subnormal_denominator_stays_finite(case):
    X, V, start = case()
    result = fit(X, V, 2, max_iter=5, tol=0, dtype="float32", **start)
    assert np.isfinite(result.templates).all() and np.isfinite(result.coefficients).all()
    chi2 = np.array(result.chi2)
    assert np.isfinite(chi2).all() and (np.diff(chi2) <= 1e-6 * chi2[0]).all()
    zero_entry = result.templates[0, 0] if start.get("update_templates", True) else result.coefficients[0, 0]
    assert zero_entry == 0
