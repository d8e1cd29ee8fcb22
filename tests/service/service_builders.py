"""Small, fast simulated data and bases for the service tests (a uniquely named module: test
directories share one ``conftest`` module name, so helpers are not imported from conftest)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from zstream.grid import LogGrid
from zstream.io import RESULT_SCHEMA, Basis, SpectrumBatch
from zstream.redshift import train_basis
from zstream.sim import SimConfig, simulate

TEST_SIM = SimConfig(pixel_size=5.0)
"""MUSE range with 5 Å pixels: a quarter of the pixels, so scans and fits stay quick."""
TEST_GRID = LogGrid(3.2, 3.97, 3e-4)
"""Rest grid about as fine as the test spectra's pixels."""
REPLICA_STOP_TIMEOUT_S = 60


def simulate_test(n: int, seed: int):
    """Simulated spectra (and truth) on the test pixel size."""
    return simulate(n, seed=seed, config=TEST_SIM)


def train_small_basis(seed: int, n: int, k: int, max_iter: int, version: str) -> Basis:
    """A quick basis from simulated sources at their true z (a stand-in for a production basis)."""
    batch, _ = simulate_test(n, seed)
    return train_basis(batch, k, TEST_GRID, max_iter=max_iter, sequential_iter=max(1, max_iter // 4), seed=seed,
                       device="cpu", progress=False, version=version)


def sources_only(n: int, seed: int) -> SpectrumBatch:
    """The true sources of a simulated set, with their redshifts (a labelled training set)."""
    batch, _ = simulate_test(n, seed)
    return batch.take(np.flatnonzero(~np.isnan(batch.z)))


def results_at_truth(batch: SpectrumBatch, *, is_source: list[bool] | None = None, warnings: list[int] | None = None) -> pa.Table:
    """Result rows for ``batch`` at its known z (what a confident scan of the training set would say)."""
    n = len(batch)
    labelled = batch.extra is not None and "spectype" in batch.extra.column_names
    return pa.Table.from_pydict({
        "spectrum_id": batch.spectrum_id, "z": batch.z, "z_err": [1e-4] * n, "chi2_min": [1.0] * n,
        "delta_chi2": [0.5] * n, "robustness": [10.0] * n,
        "is_source": is_source if is_source is not None else [True] * n, "is_blend": [False] * n,
        "blend_score": [0.0] * n, "z_blend": [None] * n, "coefficients": [[1.0, 0.0, 0.0]] * n,
        "basis_version": ["v-test"] * n, "warnings": warnings if warnings is not None else [0] * n,
        "n_pixels_used": [100] * n,
        "spectype": batch.extra.column("spectype").to_pylist() if labelled else ["GALAXY"] * n,
        **{name: [None] * n for name in ("z_alt", "spectype_alt", "chi2_alt", "spike_score", "edge_score", "p_source", "p_z_ok",
                                         "p_blend")},
    }, schema=RESULT_SCHEMA)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample on a replica's real ``/metrics`` endpoint, keyed by (name, sorted labels)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(0.2)
