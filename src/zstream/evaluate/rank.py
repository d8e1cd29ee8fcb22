"""Rank selection by K-fold cross-validation (Bourahma et al. 2026, Sect. 3.5).

For each fold, templates of every trial rank k are learned with Nearly-NMF on the
other folds; the held-out spectra are projected onto them (coefficients-only fit)
and their χ² per weighted pixel is the score. The recommendation is the smallest
k whose mean held-out χ² is within one fold-to-fold standard error of the best
(the "one-standard-error rule"): more templates that do not measurably generalise
better only add freedom to fit noise and wrong redshifts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from zstream.errors import UserError
from zstream.nmf import fit, project


@dataclass
class RankSelection:
    """Held-out χ² per fold and rank, and the recommended rank.

    Attributes
    ----------
    ks : ndarray (n_k,)
    heldout_chi2 : ndarray (n_folds, n_k)
        χ² per weighted pixel of each held-out fold.
    recommended : int
    """

    ks: np.ndarray
    heldout_chi2: np.ndarray
    recommended: int

    @property
    def mean(self) -> np.ndarray:
        """Mean held-out χ² per pixel over folds, shape ``(n_k,)``."""
        return self.heldout_chi2.mean(axis=0)

    @property
    def standard_error(self) -> np.ndarray:
        """Standard error of :attr:`mean` from the fold-to-fold scatter, shape ``(n_k,)``."""
        n_folds = self.heldout_chi2.shape[0]
        return self.heldout_chi2.std(axis=0, ddof=1) / np.sqrt(n_folds) if n_folds > 1 else np.zeros(self.ks.size)

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {"ks": self.ks.tolist(), "mean_heldout_chi2": self.mean.tolist(),
                "standard_error": self.standard_error.tolist(), "heldout_chi2": self.heldout_chi2.tolist(),
                "recommended_k": self.recommended}


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Shuffled, near-equal partition of ``range(n)`` into ``folds`` test sets."""
    if not 2 <= folds <= n:
        raise UserError(f"--folds must be between 2 and the number of spectra ({n}), got {folds}")
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def heldout_chi2(X: np.ndarray, V: np.ndarray, templates: np.ndarray, **project_kwargs) -> float:
    """χ² per weighted pixel of ``X`` projected onto fixed ``templates`` (non-negative coefficients).

    Parameters
    ----------
    X, V : ndarray (n, n_pixels)
    templates : ndarray (k, n_pixels)
    **project_kwargs
        Passed to :func:`zstream.nmf.project` (``max_iter``, ``device``...).

    Returns
    -------
    float
    """
    coefficients = project(X, V, templates, **project_kwargs).coefficients
    residual = X - coefficients @ templates
    return float(np.sum(V * residual**2) / max(int(np.count_nonzero(V)), 1))


def select_rank(
    X: np.ndarray,
    V: np.ndarray,
    ks: Sequence[int],
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 200,
    device=None,
    progress: bool = False,
    on_fold: Callable[[int, int, float], None] | None = None,
) -> RankSelection:
    """K-fold cross-validated held-out χ² for every rank in ``ks``.

    Parameters
    ----------
    X, V : ndarray (n_spectra, n_pixels)
        Rest-frame training spectra and weights (``zstream.redshift.train.rest_frame_rows``).
    ks : sequence of int
        Trial ranks.
    folds : int
        Number of folds K (Bourahma et al. 2026: 5).
    seed : int
        Seed of the fold split and of the NMF starts.
    max_iter : int
        Iteration cap of each NMF fit and projection.
    device : str, optional
        torch device (``None``: CUDA when present).
    progress : bool
        tqdm bar over the fold × rank fits.
    on_fold : callable, optional
        ``on_fold(fold, k, chi2)`` after each fit, for logging.

    Returns
    -------
    RankSelection
    """
    ks_arr = np.asarray(sorted(set(int(k) for k in ks)))
    if ks_arr.size == 0 or ks_arr[0] < 1:
        raise UserError(f"ranks must be positive integers, got {list(ks)}")
    tests = fold_indices(X.shape[0], folds, seed)
    scores = np.zeros((folds, ks_arr.size))
    bar = tqdm(total=folds * ks_arr.size, desc="select-rank", unit="fit", disable=not progress)
    for fold, test in enumerate(tests):
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        for column, k in enumerate(ks_arr):
            templates = fit(X[train], V[train], int(k), max_iter=max_iter, seed=seed, device=device).templates
            scores[fold, column] = heldout_chi2(X[test], V[test], templates, max_iter=max_iter, device=device)
            if on_fold is not None:
                on_fold(fold, int(k), float(scores[fold, column]))
            bar.update()
    bar.close()
    return RankSelection(ks_arr, scores, _one_standard_error_rank(ks_arr, scores))


def _one_standard_error_rank(ks: np.ndarray, scores: np.ndarray) -> int:
    mean = scores.mean(axis=0)
    error = scores.std(axis=0, ddof=1) / np.sqrt(scores.shape[0]) if scores.shape[0] > 1 else np.zeros(ks.size)
    best = int(np.argmin(mean))
    return int(ks[np.flatnonzero(mean <= mean[best] + error[best])[0]])
