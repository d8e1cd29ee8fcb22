"""Checks on user input; each failure is one ``UserError`` naming the input, the problem and the fix."""

from __future__ import annotations

import numpy as np

from zstream.errors import UserError

METHODS = ("nearly", "shift", "clip")


def check_block(flux: np.ndarray, ivar: np.ndarray, label: str) -> None:
    """Reject a block of spectra with bad shapes, non-finite values or negative weights.

    Parameters
    ----------
    flux, ivar : ndarray (n_rows, n_pixels)
    label : str
        Where the block comes from (``"X"``, ``"batch 3"``), used in messages.

    Raises
    ------
    UserError
        On shape mismatch, NaN/inf in either array or negative weights.
    """
    if flux.ndim != 2 or ivar.ndim != 2:
        raise UserError(f"{label}: flux and ivar must be 2-D (n_spectra, n_pixels); "
                        f"got {flux.shape} and {ivar.shape}")
    if flux.shape != ivar.shape:
        raise UserError(f"{label}: flux shape {flux.shape} and ivar shape {ivar.shape} differ; "
                        "pass weights of the same shape")
    for name, values in (("flux", flux), ("ivar", ivar)):
        n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if n_bad:
            raise UserError(f"{label}: {name} has {n_bad} NaN/inf values of {values.size}; "
                            "set them to 0 with ivar 0 to mark them missing")
    n_negative = int(np.count_nonzero(ivar < 0))
    if n_negative:
        raise UserError(f"{label}: ivar has {n_negative} negative weights of {ivar.size}; weights must be >= 0 (0 = missing)")


def check_rank(k: int, n_spectra: int, n_pixels: int) -> None:
    """Reject a number of templates outside ``1 <= k <= min(n_spectra, n_pixels)``."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise UserError(f"k must be an integer number of templates; got {k!r}")
    if not 1 <= k <= min(n_spectra, n_pixels):
        raise UserError(f"k={k} templates is outside 1..min(n_spectra={n_spectra}, n_pixels={n_pixels}); "
                        "choose fewer templates or pass more data")


def check_settings(method: str, smoothness: float, max_iter: int, tol: float,
                   chunk_size: int | None, sequential_iter: int) -> None:
    """Reject unknown methods and out-of-range numeric settings."""
    if method not in METHODS:
        raise UserError(f"method {method!r} is unknown; use one of {', '.join(METHODS)}")
    if not np.isfinite(smoothness) or smoothness < 0:
        raise UserError(f"smoothness={smoothness} must be finite and >= 0")
    if max_iter < 0 or sequential_iter < 0:
        raise UserError(f"max_iter={max_iter} and sequential_iter={sequential_iter} must be >= 0")
    if not np.isfinite(tol) or tol < 0:
        raise UserError(f"tol={tol} must be finite and >= 0")
    if chunk_size is not None and chunk_size < 1:
        raise UserError(f"chunk_size={chunk_size} must be a positive number of spectra or None")


def check_shift(shift: float | None, required: float) -> float:
    """Return the Shift-NMF scalar shift, defaulting to the minimum that makes observed data non-negative.

    Raises
    ------
    UserError
        If ``shift`` is below the most negative observed value's magnitude.
    """
    if shift is None:
        return required
    if not np.isfinite(shift) or shift < required:
        raise UserError(f"shift={shift} is below the {required:.6g} needed to make every observed flux "
                        "non-negative; pass shift=None for the minimum")
    return float(shift)


def check_initial(name: str, values: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Return a warm-start matrix as float64 after checking its shape, finiteness and sign.

    Parameters
    ----------
    name : str
        ``"templates"`` (shape (k, n_pixels)) or ``"coefficients"`` (shape (n_spectra, k)).
    values : array-like or None
    shape : tuple of int
        Expected shape.
    """
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise UserError(f"{name} has shape {array.shape}, expected {shape}")
    n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    n_negative = int(np.count_nonzero(array < 0))
    if n_bad or n_negative:
        raise UserError(f"{name} has {n_bad} NaN/inf and {n_negative} negative values of {array.size}; "
                        "warm starts must be finite and non-negative")
    return array
