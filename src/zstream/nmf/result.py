"""The object every NMF fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class NMFResult:
    """Templates, coefficients and convergence record of one fit.

    Attributes
    ----------
    templates : ndarray (k, n_pixels)
        Non-negative templates, normalised to unit root-mean-square per row
        when they were fitted (see ``zstream.nmf.normalise``).
    coefficients : ndarray (n_spectra, k)
        Non-negative coefficients in the flux units of the data;
        ``coefficients @ templates`` is the model.
    chi2 : list of float
        Objective after each iteration (weighted χ² of the method, plus the
        smoothness penalty when ``smoothness > 0``), measured from the residual
        with float64 accumulation. χ² is dimensionless: the same in any flux units.
    n_iter : int
        Iterations run, sequential stages included.
    converged : bool
        Whether the relative χ² change fell below ``tol`` before ``max_iter``.
    method : str
        ``"nearly"``, ``"shift"`` or ``"clip"``.
    settings : dict
        JSON-serialisable settings used, including the resolved shift, device
        and dtype, for provenance.
    """

    templates: np.ndarray
    coefficients: np.ndarray
    chi2: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    method: str = "nearly"
    settings: dict = field(default_factory=dict)
