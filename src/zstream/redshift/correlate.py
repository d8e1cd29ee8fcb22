"""Normal equations of the template fit at every pixel shift, by FFT cross-correlation.

Templates shifted by ``s`` pixels (redshift ``z_of(s)``) give the normal
equations of the weighted least-squares fit as cross-correlations of window
signals of the spectrum (see :mod:`zstream.redshift.observed`) with per-basis
signals, over window pixels ``start + m``:

    b_k(s)  = Σ_m G_m T_k[start + m − s]                               (G: spread w f)
    A_kl(s) = Σ_m U_m (T_k T_l)[start + m − s]
            + Σ_m V_m (T_k[·] T_l[·+1] + T_k[·+1] T_l[·])[start + m − s]

The transforms of the per-basis signals (templates, k(k+1)/2 products and as
many neighbour products) are computed once per window; each spectrum needs its
own forward transforms plus one inverse transform per output row (the two
terms of ``A_kl`` are added before inverting).
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
        Transform length: the smallest fast length ≥ ``length + n_shifts`` (no wrap-around).
    pairs : Tensor (2, k (k + 1) / 2), long
        Template index pairs ``(k, l)``, ``k ≤ l``, in the order of :meth:`gram` rows.
    dtype, device
        Those of the templates, for the spectra's signals.
    """

    def __init__(self, templates: torch.Tensor, start: int, length: int, shift_lo: int, shift_hi: int) -> None:
        k, n_pixels = templates.shape
        self.k = k
        self.dtype, self.device = templates.dtype, templates.device
        self.start, self.length = start, length
        self.shift_lo, self.shift_hi = shift_lo, shift_hi
        self.n_shifts = shift_hi - shift_lo + 1
        self.n_fft = scipy.fft.next_fast_len(length + self.n_shifts, real=True)
        # Segment index i holds template pixel start - shift_hi + i (zero outside the grid),
        # so correlation lag u = shift_hi - s; one extra pixel for the neighbour products.
        segment = templates.new_zeros(k, length + self.n_shifts)
        first = start - shift_hi
        lo, hi = max(0, first), min(n_pixels, first + segment.shape[1])
        if hi > lo:
            segment[:, lo - first : hi - first] = templates[:, lo:hi]
        self.pairs = torch.triu_indices(k, k, device=templates.device)
        self._template_ft = torch.fft.rfft(segment, n=self.n_fft)
        left, right = segment[self.pairs[0]], segment[self.pairs[1]]
        self._product_ft = torch.fft.rfft(left * right, n=self.n_fft)
        neighbours = left[:, :-1] * right[:, 1:] + left[:, 1:] * right[:, :-1]
        self._neighbour_ft = torch.fft.rfft(neighbours, n=self.n_fft)

    def lag_of(self, shift: torch.Tensor) -> torch.Tensor:
        """Output index of integer ``shift`` (any shape): ``shift_hi − shift``."""
        return self.shift_hi - shift

    def correlate_templates(self, signal: torch.Tensor) -> torch.Tensor:
        """``Σ_m signal_m T_k[start + m − s]`` for all ``k`` and lags: ``(n, k, n_shifts)`` from ``(n, length)``.

        With ``signal = w f`` this is ``b_k(s)``.
        """
        return self._correlate(signal, self._template_ft)

    def gram(self, same: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
        """``A_kl(s)`` for each spectrum and pair ``(k, l)`` of :attr:`pairs`, by lag: ``(n, n_pairs, n_shifts)``.

        From the window signals ``U`` (``same``) and ``V`` (``neighbour``), each ``(n, length)``.
        """
        same_ft, neighbour_ft = self._transform(same), self._transform(neighbour)
        out = same.new_empty(same.shape[0], self._product_ft.shape[0], self.n_shifts)
        for row in range(same.shape[0]):  # one spectrum at a time bounds the complex intermediate
            spectrum = self._product_ft * same_ft[row] + self._neighbour_ft * neighbour_ft[row]
            out[row] = torch.fft.irfft(spectrum, n=self.n_fft)[:, : self.n_shifts]
        return out

    def _correlate(self, signal: torch.Tensor, basis_ft: torch.Tensor) -> torch.Tensor:
        signal_ft = self._transform(signal)
        out = signal.new_empty(signal.shape[0], basis_ft.shape[0], self.n_shifts)
        for row in range(signal.shape[0]):  # one spectrum at a time bounds the complex intermediate
            out[row] = torch.fft.irfft(basis_ft * signal_ft[row], n=self.n_fft)[:, : self.n_shifts]
        return out

    def _transform(self, signal: torch.Tensor) -> torch.Tensor:
        """Conjugated forward transforms of ``(n, length)`` window signals: ``(n, n_fft // 2 + 1)``.

        In zero-padded groups of FORWARD_GROUP rows: a single-row transform takes a slower code path
        that also rounds differently, which would make results depend on the batch size.
        """
        n = signal.shape[0]
        padded = signal.new_zeros(-(-n // FORWARD_GROUP) * FORWARD_GROUP, self.n_fft)
        padded[:n, : signal.shape[1]] = signal
        return torch.fft.rfft(padded)[:n].conj()


def shift_range(grid_step: float, z_min: float, z_max: float) -> tuple[int, int]:
    """Integer pixel shifts bracketing the redshift range ``[z_min, z_max]``."""
    lo = int(np.floor(np.log10(1.0 + z_min) / grid_step))
    hi = int(np.ceil(np.log10(1.0 + z_max) / grid_step))
    return lo, hi
