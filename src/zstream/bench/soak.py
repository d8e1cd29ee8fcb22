"""``zstream bench soak``: drive ``zstream serve`` at a fixed rate for a bounded time and watch it.

The soak starts a real service process against a broker on loopback (the
embedded one unless ``--bootstrap-servers`` is given), produces simulated
spectra at ``--rate`` for ``--duration`` seconds, reads every result and dead
letter back, and samples the consumer lag and the service's resident memory
every ``--sample-every`` seconds. It reports sustained throughput, end-to-end
latency p50/p99 (input message timestamp → result record timestamp), lag and
RSS over time, whether RSS grew beyond noise and lag stayed bounded, and the
ledger check (every input answered). The baseline is the same spectra through
:meth:`Scanner.scan` in this process: the ratio says how much of the raw scan
capacity the soak rate uses.
"""

from __future__ import annotations

import numpy as np

from zstream import nmf
from zstream.grid import LogGrid
from zstream.io import Basis, spectra_to_table
from zstream.service.refit import rest_frame_matrix
from zstream.sim import simulate

SOAK_GRID = LogGrid(3.2, 3.97, 5e-4)
"""A coarse rest grid (about 1540 pixels): small bases keep scans cheap on a CPU box."""


def starter_basis(n_train: int = 150, k: int = 3, *, grid: LogGrid = SOAK_GRID, seed: int = 11, max_iter: int = 60,
                  version: str = "soak-v1") -> Basis:
    """A quick basis fitted to simulated sources at their true redshift.

    Parameters
    ----------
    n_train : int
        Simulated spectra drawn (only the true sources among them are used).
    k : int
        Number of templates.
    grid : LogGrid
        Rest-frame grid of the templates.
    seed : int
        Seed of the simulation and of the NMF start.
    max_iter : int
        Nearly-NMF iterations.
    version : str
        Version id of the basis.

    Returns
    -------
    Basis
        Templates of shape ``(k, grid.n_pixels)``.
    """
    batch, _ = simulate(n_train, seed=seed)
    sources = spectra_to_table(batch).filter(~np.isnan(batch.z))
    X, V = rest_frame_matrix(sources, grid)
    fitted = nmf.fit(X, V, k, max_iter=max_iter, seed=seed, device="cpu")
    return Basis(fitted.templates, grid, version, meta={"purpose": "soak and reliability tests"})
