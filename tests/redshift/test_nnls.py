"""The batched NNLS solver against scipy, and the KKT conditions of its solutions."""

import numpy as np
import pytest
import scipy.optimize
import torch

from zstream.redshift.nnls import nnls_batched


def random_problems(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated least-squares problems (like overlapping templates) as designs and targets."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(k) + 0.6 * rng.random((k, k))
    designs = rng.random((n, 40, k)) @ mixing
    targets = designs @ rng.normal(0.3, 1.0, (n, k, 1)) + rng.normal(0, 0.3, (n, 40, 1))
    return designs, targets[..., 0]


def to_normal_equations(designs: np.ndarray, targets: np.ndarray, dtype: torch.dtype):
    gram = np.einsum("npi,npj->ijn", designs, designs)
    rhs = np.einsum("npi,np->in", designs, targets)
    reference = np.einsum("npi,npi->in", designs, designs)
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    rows, cols = np.triu_indices(gram.shape[0])  # packed upper triangle, row by row
    return gram, rhs, as_tensor(gram[rows, cols]), as_tensor(rhs), as_tensor(reference)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_nnls_matches_scipy_and_satisfies_kkt(dtype):
    designs, targets = random_problems(300, 10, seed=1)
    gram, rhs, gram_t, rhs_t, reference = to_normal_equations(designs, targets, dtype)
    coefficients, converged = nnls_batched(gram_t, rhs_t, reference)
    coefficients = coefficients.double().numpy()
    assert converged.all()
    assert (coefficients >= 0).all()
    tolerance = 1e-8 if dtype == torch.float64 else 2e-3
    for i in range(designs.shape[0]):
        expected, norm = scipy.optimize.nnls(designs[i], targets[i])
        chi2 = np.sum((targets[i] - designs[i] @ coefficients[:, i]) ** 2)
        assert chi2 == pytest.approx(norm**2, rel=tolerance)
        gradient = gram[:, :, i] @ coefficients[:, i] - rhs[:, i]
        scale = np.abs(rhs[:, i]).max()
        # KKT: gradient ≥ 0 everywhere, = 0 where the coefficient is positive
        assert (gradient > -tolerance * 10 * scale).all()
        assert np.abs(gradient[coefficients[:, i] > 1e-3 * coefficients[:, i].max()]).max(initial=0.0) < tolerance * 10 * scale


def test_some_problems_need_the_constraint():
    designs, targets = random_problems(300, 10, seed=2)
    unconstrained = np.stack([np.linalg.lstsq(d, t, rcond=None)[0] for d, t in zip(designs, targets)])
    assert (unconstrained < 0).any(axis=1).mean() > 0.5  # the test exercises the exchange iterations


def test_dead_template_gets_zero_and_does_not_block_the_rest():
    designs, targets = random_problems(20, 6, seed=3)
    designs[:, :, 2] = 0.0  # template 2 does not overlap these spectra
    _, _, gram_t, rhs_t, reference = to_normal_equations(designs, targets, torch.float64)
    reference[2] = 1.0  # it does elsewhere (other shifts of the same spectra)
    coefficients, converged = nnls_batched(gram_t, rhs_t, reference)
    assert converged.all()
    assert (coefficients[2] == 0).all()
    for i in range(designs.shape[0]):
        _, norm = scipy.optimize.nnls(designs[i], targets[i])
        chi2 = np.sum((targets[i] - designs[i] @ coefficients[:, i].numpy()) ** 2)
        assert chi2 == pytest.approx(norm**2, rel=1e-8)


def test_template_collinear_within_table_noise_converges_to_the_true_minimum():
    """A template that is a combination of others, with Gram noise like the FFT tables', is dropped, not cycled on."""
    designs, targets = random_problems(200, 6, seed=4)
    designs[:, :, 5] = 0.5 * designs[:, :, 0] + 0.5 * designs[:, :, 1]
    gram, _, gram_t, rhs_t, reference = to_normal_equations(designs, targets, torch.float64)
    rng = np.random.default_rng(5)
    noise = 1e-12 * gram.max(axis=(0, 1)) * rng.normal(size=gram_t.shape)  # absolute, as a correlation's error
    coefficients, converged = nnls_batched(gram_t + torch.as_tensor(noise), rhs_t, reference)
    assert converged.all()
    for i in range(designs.shape[0]):
        _, norm = scipy.optimize.nnls(designs[i], targets[i])
        chi2 = np.sum((targets[i] - designs[i] @ coefficients[:, i].numpy()) ** 2)
        assert chi2 == pytest.approx(norm**2, rel=1e-8)
