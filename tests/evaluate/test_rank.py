"""K-fold rank selection finds the true rank of data built from known templates; the CLI parses ranks."""

import json

import numpy as np
import pytest

from zstream.cli import main
from zstream.cli.select_rank import parse_ranks
from zstream.errors import UserError
from zstream.evaluate.rank import fold_indices, select_rank
from zstream.grid import LogGrid


def _rank_three_data(n=45, n_pixels=120, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, n_pixels)
    templates = np.stack([np.exp(-0.5 * ((x - c) / 0.08) ** 2) for c in (0.2, 0.5, 0.8)])
    coefficients = rng.uniform(0.5, 2.0, (n, 3))
    sigma = 0.02
    X = (coefficients @ templates + rng.normal(0, sigma, (n, n_pixels))).astype(np.float32)
    V = np.full_like(X, 1 / sigma**2)
    return X, V


def test_held_out_chi2_drops_to_the_noise_at_the_true_rank_and_no_smaller_rank_is_recommended():
    X, V = _rank_three_data()
    selection = select_rank(X, V, [1, 2, 3, 4], folds=3, max_iter=120, device="cpu")
    mean = selection.mean
    assert mean[0] > mean[1] > 10 * mean[2]
    assert mean[2] < 1.6  # noise-limited (χ² per pixel ≈ 1, up to NMF convergence)
    assert selection.recommended >= 3
    assert selection.heldout_chi2.shape == (3, 4)


def test_folds_partition_the_spectra():
    folds = fold_indices(23, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert {len(f) for f in folds} <= {4, 5}
    with pytest.raises(UserError, match="--folds"):
        fold_indices(3, 5, seed=1)


def test_parse_ranks():
    assert parse_ranks("2..5") == [2, 3, 4, 5]
    assert parse_ranks("4, 6,10") == [4, 6, 10]
    with pytest.raises(UserError, match="2..16"):
        parse_ranks("5..2")


def test_cli_select_rank_writes_json_and_plot(tmp_path, capsys):
    assert main(["simulate", "--n", "30", "--seed", "4", "--out", str(tmp_path / "sim")]) == 0
    code = main(["select-rank", "--input", str(tmp_path / "sim" / "spectra.parquet"), "--k", "1,2", "--folds", "2",
                 "--max-iter", "10", "--grid-step", str(LogGrid().step * 32), "--device", "cpu",
                 "--out", str(tmp_path / "rank")])
    assert code == 0
    result = json.loads((tmp_path / "rank" / "rank.json").read_text())
    assert result["ks"] == [1, 2] and result["recommended_k"] in (1, 2)
    assert (tmp_path / "rank" / "rank.png").exists()
    assert "recommended k" in capsys.readouterr().out


def test_cli_select_rank_refuses_a_set_without_redshifts(tmp_path, capsys):
    assert main(["simulate", "--n", "6", "--seed", "4", "--false-fraction", "1", "--blend-fraction", "0",
                 "--out", str(tmp_path / "sim")]) == 0
    code = main(["select-rank", "--input", str(tmp_path / "sim" / "spectra.parquet"), "--k", "1,2"])
    assert code == 2
    assert "no spectrum has a known redshift" in capsys.readouterr().err
