"""Log-λ rest-frame grid and the observed → rest transform (Bourahma et al. 2026, "Accurate spectroscopic
redshift estimation using non-negative matrix factorization: application to MUSE spectra", Sect. 3 / Eq. 4).

On a grid uniform in log10 λ a redshift is a pixel shift: a spectrum observed at
``z`` lands ``log10(1 + z) / step`` pixels redward of its rest-frame position.
"""

from zstream.grid.loglam import LogGrid, resample_to_grid, to_rest_frame

__all__ = ["LogGrid", "resample_to_grid", "to_rest_frame"]
