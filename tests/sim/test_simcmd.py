"""``zstream simulate`` writes spectype and sky into its files, and --population selects the population."""

import numpy as np
import pyarrow.parquet as pq

from zstream.cli import main
from zstream.io import read_spectra
from zstream.sim import SimConfig, simulate


def test_simulate_writes_spectype_and_sky_that_read_back(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "--n", "12", "--seed", "4", "--pixel-size", "5", "--format", "both",
                 "--population", "wide", "--out", str(out)]) == 0
    truth = pq.read_table(out / "truth.parquet")
    expected, expected_truth = simulate(12, seed=4, config=SimConfig.preset("wide", pixel_size=5.0))
    assert truth.equals(expected_truth)
    for suffix in (".parquet", ".jsonl"):
        batch, rejects = read_spectra(out / f"spectra{suffix}")
        assert not rejects
        assert batch.extra.column("spectype").to_pylist() == truth.column("spectype").to_pylist()
        for sky, reference in zip(batch.extra.column("sky").to_pylist(), expected.extra.column("sky").to_pylist()):
            assert np.array_equal(np.float32(sky), np.float32(reference)), suffix


def test_simulate_no_sky_and_default_population(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "--n", "6", "--seed", "4", "--pixel-size", "5", "--no-sky", "--out", str(out)]) == 0
    batch, _ = read_spectra(out / "spectra.parquet")
    assert batch.extra.column_names == ["spectype"]
    expected, _ = simulate(6, seed=4, config=SimConfig(pixel_size=5.0))
    assert all(np.array_equal(a, b) for a, b in zip(batch.flux, expected.flux))
