"""Bad input raises one clear ValueError with counts; empty rows and columns are harmless."""

import numpy as np
import pyarrow as pa
import pytest

from zstream.errors import UserError
from zstream.nmf import fit, project


def with_value(array, index, value):
    changed = array.copy()
    changed[index] = value
    return changed


@pytest.mark.parametrize("mutate,match", [
    (lambda X, V: (with_value(X, (0, 1), np.nan), V), "X: flux has 1 NaN/inf"),
    (lambda X, V: (X, with_value(V, (2, 3), np.inf)), "X: ivar has 1 NaN/inf"),
    (lambda X, V: (X, with_value(with_value(V, (0, 0), -1.0), (1, 1), -2.0)), "2 negative weights"),
    (lambda X, V: (X, V[:, :-1]), r"flux shape \(60, 80\) and ivar shape \(60, 79\) differ"),
    (lambda X, V: (X[0], V[0]), "must be 2-D"),
])
def test_bad_arrays(problem, mutate, match):
    X, V = mutate(*problem)
    with pytest.raises(ValueError, match=match):
        fit(X, V, 2, max_iter=1)


@pytest.mark.parametrize("k", [0, -1, 81, 2.5])
def test_k_out_of_range(problem, k):
    with pytest.raises(UserError, match="k=|integer"):
        fit(*problem, k, max_iter=1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="pca"), "method 'pca' is unknown"),
    (dict(method="shift", shift=0.0), "below the"),
    (dict(smoothness=-1.0), "smoothness"),
    (dict(tol=np.nan), "tol"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(templates=np.ones((2, 5))), r"templates has shape \(2, 5\), expected \(2, 80\)"),
    (dict(coefficients=-np.ones((60, 2))), "120 negative"),
    (dict(update_templates=False), "needs the fixed templates"),
    (dict(sequential=True, templates=np.ones((2, 80))), "sequential=True"),
    (dict(device="cuda:0"), "CUDA is not available" if not __import__("torch").cuda.is_available() else "x^"),
])
def test_bad_settings(problem, kwargs, match):
    if match == "x^":
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match=match):
        fit(*problem, 2, max_iter=1, **kwargs)


def test_bad_arrow_batches(problem):
    X, V = problem
    ragged = pa.RecordBatch.from_pydict({"flux": pa.array([[1.0, 2.0], [1.0]]), "ivar": pa.array([[1.0, 1.0], [1.0]])})
    with pytest.raises(UserError, match="batch 0: column 'flux'.*same number of pixels"):
        fit([ragged], None, 1)
    missing = pa.RecordBatch.from_pydict({"flux": pa.array([[1.0, 2.0]])})
    with pytest.raises(UserError, match="missing list column 'ivar'"):
        fit([missing], None, 1)
    good = pa.RecordBatch.from_pydict({"flux": pa.array(list(X[:3])), "ivar": pa.array(list(V[:3]))})
    short = pa.RecordBatch.from_pydict({"flux": pa.array(list(X[:3, :10])), "ivar": pa.array(list(V[:3, :10]))})
    with pytest.raises(UserError, match="batch 1: 10 pixels, but earlier blocks have 80"):
        fit([good, short], None, 1)
    with pytest.raises(UserError, match="V must be None"):
        fit([good], V[:3], 1)


def test_project_rejects_a_one_dimensional_basis(problem):
    with pytest.raises(UserError, match="templates must be 2-D"):
        project(*problem, np.ones(80))


@pytest.mark.parametrize("method", ["nearly", "shift", "clip"])
def test_empty_rows_and_columns_stay_finite_and_deterministic(problem, method):
    X, V = problem
    V = V.copy()
    V[[3, 17], :] = 0
    V[:, [0, 40, 79]] = 0
    runs = [fit(X, V, 3, method=method, smoothness=0.5, max_iter=30) for _ in range(2)]
    for run in runs:
        assert np.isfinite(run.templates).all() and np.isfinite(run.coefficients).all()
        assert np.isfinite(run.chi2).all()
    np.testing.assert_array_equal(runs[0].templates, runs[1].templates)
    np.testing.assert_array_equal(runs[0].coefficients, runs[1].coefficients)
