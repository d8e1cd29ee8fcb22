"""Builders for the io tests: small random spectra with a fixed seed."""

import numpy as np
import pyarrow as pa

from zstream.io import SpectrumBatch

N_PIXELS = 64


def make_batch(n: int = 4, *, seed: int = 0, shared_grid: bool = False, with_z: bool = True) -> SpectrumBatch:
    """``n`` spectra, each on its own increasing grid (or one shared grid), with a pass-through column."""
    rng = np.random.default_rng(seed)
    grids = [np.sort(rng.uniform(4600.0, 9350.0, N_PIXELS)) for _ in range(1 if shared_grid else n)]
    return SpectrumBatch(
        spectrum_id=[f"spec-{seed}-{i}" for i in range(n)],
        wavelength=[grids[0] if shared_grid else grids[i] for i in range(n)],
        flux=[rng.normal(size=N_PIXELS).astype(np.float32) for _ in range(n)],
        ivar=[rng.uniform(0.5, 2.0, N_PIXELS) for _ in range(n)],
        z=rng.uniform(0.0, 6.0, n) if with_z else None,
        extra=pa.table({"ra": rng.uniform(0, 360, n), "field": [f"F{i % 2}" for i in range(n)]}),
    )


def assert_same_spectra(actual: SpectrumBatch, expected: SpectrumBatch) -> None:
    """Equal ids, arrays (at their stored precision), redshifts and pass-through columns."""
    assert actual.spectrum_id == expected.spectrum_id
    for name in ("wavelength", "flux", "ivar"):
        for got, want in zip(getattr(actual, name), getattr(expected, name), strict=True):
            np.testing.assert_array_equal(got, want)
    if expected.z is None:
        assert actual.z is None
    else:
        np.testing.assert_array_equal(actual.z, expected.z)
    assert actual.extra.to_pylist() == expected.extra.to_pylist()
