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

from zstream.grid import LogGrid
from zstream.io import Basis
from zstream.redshift import train_basis
from zstream.sim import simulate

SOAK_GRID = LogGrid(3.2, 3.97, 5e-4)
"""A coarse rest grid (about 1540 pixels): small bases keep scans cheap on a CPU box."""


def starter_basis(n_train: int = 150, k: int = 3, *, grid: LogGrid = SOAK_GRID, seed: int = 11, max_iter: int = 60,
                  version: str = "soak-v1") -> Basis:
    """A quick basis fitted to simulated sources at their true redshift (a stand-in for a production basis).

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
        Nearly-NMF iterations of the joint fit (a third of that per sequential stage).
    version : str
        Version id of the basis.

    Returns
    -------
    Basis
        Templates of shape ``(k, grid.n_pixels)``.
    """
    batch, _ = simulate(n_train, seed=seed)
    return train_basis(batch, k, grid, max_iter=max_iter, sequential_iter=max(1, max_iter // 3), seed=seed,
                       device="cpu", progress=False, version=version)
