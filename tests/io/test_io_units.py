"""Validation keeps physical units intact (float64 ivar) and refuses only what no flux scale can fix."""

import numpy as np
import pytest

from zstream.io import Reason, RecordError
from zstream.io.validate import check_spectrum

WAVELENGTH = np.linspace(4600.0, 9350.0, 50)


@pytest.mark.parametrize("a", [1e-25, 1e-20, 1.0, 1e8])
def test_any_physical_scale_passes_with_ivar_exact(a):
    rng = np.random.default_rng(1)
    flux, ivar = a * rng.normal(1.0, 0.1, 50), rng.uniform(0.5, 2.0, 50) / a**2  # a = 1e-20: ivar ≈ 1e40
    checked = check_spectrum(WAVELENGTH, flux, ivar)
    assert checked.ivar.dtype == np.float64 and np.all(np.isfinite(checked.ivar))
    np.testing.assert_array_equal(checked.ivar, ivar)


def test_an_ivar_range_beyond_any_common_scale_is_refused():
    ivar = np.ones(50)
    ivar[:2] = (1e-200, 1e200)
    with pytest.raises(RecordError) as error:
        check_spectrum(WAVELENGTH, np.ones(50), ivar)
    assert error.value.reason is Reason.UNSCALABLE_IVAR
