"""Chunked input (chunk_size, Arrow record batches) gives the in-memory result."""

import numpy as np
import pyarrow as pa
import pytest

from nmf_problems import make_problem
from zstream.nmf import fit


def to_batches(X, V, rows_per_batch):
    """Arrow record batches with list columns flux and ivar, rows_per_batch spectra each."""
    batches = []
    for start in range(0, X.shape[0], rows_per_batch):
        flux, ivar = X[start:start + rows_per_batch], V[start:start + rows_per_batch]
        batches.append(pa.RecordBatch.from_pydict({
            "spectrum_id": [f"s{start + i}" for i in range(len(flux))],
            "flux": pa.array(list(flux), type=pa.list_(pa.float64())),
            "ivar": pa.array(list(ivar), type=pa.list_(pa.float64())),
        }))
    return batches


@pytest.fixture(scope="module")
def in_memory():
    X, V = make_problem(seed=11)
    return X, V, fit(X, V, 3, method="shift", smoothness=1.0, max_iter=40, tol=0, dtype="float64")


@pytest.mark.parametrize("source", ["chunk_size", "batch_list", "batch_callable", "batches_and_chunk_size"])
def test_chunked_matches_in_memory(in_memory, source):
    X, V, expected = in_memory
    kwargs = dict(method="shift", smoothness=1.0, max_iter=40, tol=0, dtype="float64")
    if source == "chunk_size":
        result = fit(X, V, 3, chunk_size=7, **kwargs)
    elif source == "batch_list":
        result = fit(to_batches(X, V, 13), None, 3, **kwargs)
    elif source == "batch_callable":
        result = fit(lambda: iter(to_batches(X, V, 25)), None, 3, **kwargs)
    else:
        result = fit(to_batches(X, V, 25), None, 3, chunk_size=4, **kwargs)
    np.testing.assert_allclose(result.chi2, expected.chi2, rtol=1e-10)
    np.testing.assert_allclose(result.templates, expected.templates, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.coefficients, expected.coefficients, rtol=1e-9, atol=1e-12)
    assert result.settings["shift"] == expected.settings["shift"]


def test_chunked_float32_conversion_matches_in_memory(in_memory):
    X, V, _ = in_memory
    kwargs = dict(method="nearly", max_iter=30, tol=0, dtype="float32")
    whole = fit(X, V, 3, **kwargs)
    chunked = fit(X, V, 3, chunk_size=9, **kwargs)
    np.testing.assert_allclose(chunked.chi2, whole.chi2, rtol=1e-5)
    np.testing.assert_allclose(chunked.coefficients @ chunked.templates, whole.coefficients @ whole.templates,
                               rtol=1e-4, atol=1e-4)
