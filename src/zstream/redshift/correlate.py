"""Normal equations of the template fit at every pixel shift, by FFT cross-correlation.

For an observed spectrum on window pixels ``start + m`` (``m < length``) with
weights ``w`` and flux ``f``, templates shifted by ``s`` pixels (redshift
``z_of(s)``) give the normal equations of the weighted least-squares fit

    b_k(s)  = Σ_m w_m f_m T_k[start + m − s]
    A_kl(s) = Σ_m w_m T_k[start + m − s] T_l[start + m − s]

Both are cross-correlations of a per-spectrum signal (``w f`` or ``w``) with a
per-basis signal (a template segment or a product of two), so the transforms of
the per-basis signals are computed once per window and each spectrum needs only
its own forward transforms plus one inverse transform per output row.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import torch


FORWARD_GROUP = 8
"""Spectra are transformed in zero-padded groups of this many rows."""


class ShiftCorrelator:
    """Template and template-product transforms for one grid window and shift range.

    Parameters
    ----------
    templates : Tensor (k, n_pixels)
        Templates on the log-λ grid, on the device and in the working dtype.
    start, length : int
        Observed window: grid pixels ``start … start + length − 1``.
    shift_lo, shift_hi : int
        Smallest and largest pixel shift to evaluate (inclusive).

    Attributes
    ----------
    n_shifts : int
        ``shift_hi − shift_lo + 1``; outputs are indexed by the lag ``shift_hi − shift``.
    n_fft : int
        Transform length: the smallest fast length ≥ ``length + n_shifts − 1`` (no wrap-around).
    pairs : Tensor (2, k (k + 1) / 2), long
        Template index pairs ``(k, l)``, ``k ≤ l``, in the order of :meth:`gram` rows.
    """

    def __init__(self, templates: torch.Tensor, start: int, length: int, shift_lo: int, shift_hi: int) -> None:
        k, n_pixels = templates.shape
        self.k = k
        self.start, self.length = start, length
        self.shift_lo, self.shift_hi = shift_lo, shift_hi
        self.n_shifts = shift_hi - shift_lo + 1
        self.n_fft = scipy.fft.next_fast_len(length + self.n_shifts - 1, real=True)
        # Segment index i holds template pixel start - shift_hi + i (zero outside the grid),
        # so correlation lag u = shift_hi - s.
        segment = templates.new_zeros(k, length + self.n_shifts - 1)
        first = start - shift_hi
        lo, hi = max(0, first), min(n_pixels, first + segment.shape[1])
        if hi > lo:
            segment[:, lo - first : hi - first] = templates[:, lo:hi]
        self.pairs = torch.triu_indices(k, k, device=templates.device)
        self._template_ft = torch.fft.rfft(segment, n=self.n_fft)
        self._product_ft = torch.fft.rfft(segment[self.pairs[0]] * segment[self.pairs[1]], n=self.n_fft)

    def lag_of(self, shift: torch.Tensor) -> torch.Tensor:
        """Output index of integer ``shift`` (any shape): ``shift_hi − shift``."""
        return self.shift_hi - shift

    def rhs(self, weighted_flux: torch.Tensor) -> torch.Tensor:
        """``b_k(s)`` for each spectrum, by lag: shape ``(n, k, n_shifts)`` from ``w f`` of shape ``(n, length)``."""
        return self.correlate_templates(weighted_flux)

    def correlate_templates(self, signal: torch.Tensor) -> torch.Tensor:
        """``Σ_m signal_m T_k[start + m − s]`` for all ``k`` and lags: ``(n, k, n_shifts)`` from ``(n, length)``."""
        return self._correlate(signal, self._template_ft)

    def gram(self, weight: torch.Tensor) -> torch.Tensor:
        """``A_kl(s)`` for each spectrum and pair ``(k, l)`` of :attr:`pairs`, by lag: ``(n, n_pairs, n_shifts)``."""
        return self._correlate(weight, self._product_ft)

    def _correlate(self, signal: torch.Tensor, basis_ft: torch.Tensor) -> torch.Tensor:
        n = signal.shape[0]
        # Forward transforms in groups of FORWARD_GROUP rows: a single-row transform takes a slower
        # code path that also rounds differently, which would make results depend on the batch size.
        rows = -(-n // FORWARD_GROUP) * FORWARD_GROUP
        padded = signal.new_zeros(rows, self.n_fft)
        padded[:n, : signal.shape[1]] = signal
        signal_ft = torch.fft.rfft(padded)[:n].conj()
        out = signal.new_empty(n, basis_ft.shape[0], self.n_shifts)
        for row in range(n):  # one spectrum at a time bounds the complex intermediate
            out[row] = torch.fft.irfft(basis_ft * signal_ft[row], n=self.n_fft)[:, : self.n_shifts]
        return out


def shift_range(grid_step: float, z_min: float, z_max: float) -> tuple[int, int]:
    """Integer pixel shifts bracketing the redshift range ``[z_min, z_max]``."""
    lo = int(np.floor(np.log10(1.0 + z_min) / grid_step))
    hi = int(np.ceil(np.log10(1.0 + z_max) / grid_step))
    return lo, hi
