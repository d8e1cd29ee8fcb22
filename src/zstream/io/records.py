"""In-memory forms of the records every stage exchanges.

``SpectrumBatch`` holds spectra on their own observed wavelength grids (lists of
arrays, since grids may differ per spectrum); ``Basis`` holds rest-frame templates.
Readers and writers for files and messages live beside this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from zstream.grid import LogGrid


@dataclass
class SpectrumBatch:
    """A batch of observed 1-D spectra.

    Attributes
    ----------
    spectrum_id : list of str
    wavelength : list of ndarray (n_i,), float64, Å, increasing
    flux : list of ndarray (n_i,), float32, flux density per Å
    ivar : list of ndarray (n_i,), float64 (physical units reach 1e40), inverse variance; 0 marks a bad pixel
        (a ``mask`` column, when present, has already been folded in as ivar = 0)
    z : ndarray (n,), float64, or None — known redshift, for training sets
    extra : pyarrow.Table or None — pass-through columns, one row per spectrum
    n_nonfinite : ndarray (n,), int64, or None — flux/ivar pixels that arrived as
        NaN/inf/null and were masked (ivar = 0) by validation, so the scanner can flag them
    """

    spectrum_id: list[str]
    wavelength: list[np.ndarray]
    flux: list[np.ndarray]
    ivar: list[np.ndarray]
    z: np.ndarray | None = None
    extra: pa.Table | None = None
    n_nonfinite: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.spectrum_id)

    def take(self, rows: Sequence[int]) -> "SpectrumBatch":
        """The spectra at ``rows``, in that order, with every per-row field (z, extra, counts)."""
        rows = list(rows)
        return SpectrumBatch(
            [self.spectrum_id[i] for i in rows],
            [self.wavelength[i] for i in rows],
            [self.flux[i] for i in rows],
            [self.ivar[i] for i in rows],
            z=None if self.z is None else np.asarray(self.z)[rows],
            extra=None if self.extra is None else self.extra.take(pa.array(rows, type=pa.int64())),
            n_nonfinite=None if self.n_nonfinite is None else np.asarray(self.n_nonfinite)[rows],
        )


@dataclass
class Basis:
    """Rest-frame NMF templates on a log-λ grid, plus provenance.

    Attributes
    ----------
    templates : ndarray (k, grid.n_pixels), float32, non-negative
    grid : LogGrid
    version : str
        Version id, unique per promoted basis.
    meta : dict
        Provenance: NMF method and settings, training-set size, creation time,
        content hash (filled in when saved).
    """

    templates: np.ndarray
    grid: LogGrid
    version: str
    meta: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of templates."""
        return int(self.templates.shape[0])
