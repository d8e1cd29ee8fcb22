"""Plain numpy version of the same update rules: the baseline ``zstream bench nmf`` times the engine against.

Written the straightforward way (as in the paper's released code): V∘X once,
then every iteration a template step and a coefficient step on whole arrays,
and χ² of the new state. Same iteration order as ``zstream.nmf.fit``, so from
the same start the iterates agree.
"""

from __future__ import annotations

import numpy as np


def _shifted_ratio(values: np.ndarray, projection: np.ndarray, model_projection: np.ndarray,
                   method: str, shift_projection: np.ndarray | float) -> np.ndarray:
    if method == "nearly":
        offset = np.maximum(-projection, 0)
    else:
        offset = shift_projection
    numerator, denominator = projection + offset, model_projection + offset
    ratio = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
    return values * ratio


def reference_iterations(X: np.ndarray, V: np.ndarray, templates: np.ndarray, coefficients: np.ndarray,
                         n_iter: int, method: str = "nearly", shift: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Run ``n_iter`` iterations of template then coefficient updates.

    Parameters
    ----------
    X, V : ndarray (n_spectra, n_pixels)
        Data (already clipped for ``method="clip"``) and weights.
    templates : ndarray (k, n_pixels)
    coefficients : ndarray (n_spectra, k)
    n_iter : int
    method : {"nearly", "shift", "clip"}
    shift : float
        Shift-NMF's y.

    Returns
    -------
    templates : ndarray (k, n_pixels)
    coefficients : ndarray (n_spectra, k)
    chi2 : list of float, one per iteration
    """
    T, C = templates.copy(), coefficients.copy()
    VX = V * X
    with_shift = method == "shift"
    chi2 = []
    for _ in range(n_iter):
        VM = V * (C @ T)
        T = _shifted_ratio(T, C.T @ VX, C.T @ VM, method, shift * (C.T @ V) if with_shift else 0.0)
        VM = V * (C @ T)
        C = _shifted_ratio(C, VX @ T.T, VM @ T.T, method, shift * (V @ T.T) if with_shift else 0.0)
        chi2.append(float(np.sum(V * (X - C @ T) ** 2)))
    return T, C, chi2
