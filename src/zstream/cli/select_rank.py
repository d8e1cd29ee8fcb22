"""``zstream select-rank``: K-fold cross-validated held-out χ² per NMF rank, with a plot and a recommendation."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import orjson

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.io import read_spectra


def parse_ranks(text: str) -> list[int]:
    """``"2..16"`` → 2, 3, …, 16; ``"4,6,10"`` → 4, 6, 10."""
    span = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", text)
    if span:
        low, high = int(span.group(1)), int(span.group(2))
        if low <= high:
            return list(range(low, high + 1))
    elif re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
        return [int(part) for part in text.split(",")]
    raise UserError(f"--k {text!r}: give a range like 2..16 or a list like 4,6,10 (positive integers)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``select-rank`` sub-command."""
    parser = subparsers.add_parser(
        "select-rank",
        help="choose the number of templates k by K-fold cross-validated held-out χ²",
        description=(
            "For each fold, learn templates of each rank on the other folds (Nearly-NMF on rest-frame "
            "spectra with known z) and project the held-out fold onto them; report χ² per pixel, plot it "
            "and recommend the smallest k within one standard error of the best (Bourahma et al. 2026, "
            "Sect. 3.5, use K = 5 and found k = 10). --spectype restricts it to one spectral class, as zstream fit "
            "learns one block per class."
        ),
    )
    parser.add_argument("--input", type=Path, required=True, help="training spectra with a z column")
    parser.add_argument("--k", type=parse_ranks, default=parse_ranks("2..16"), help="ranks: 2..16 (default) or 4,6,10")
    parser.add_argument("--folds", type=int, default=5, help="number of folds K (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and NMF starts")
    parser.add_argument("--max-iter", type=int, default=200, help="NMF iterations per fit (default 200)")
    parser.add_argument("--grid-step", type=float, default=LogGrid().step,
                        help="log10 λ step of the rest-frame grid (default: the basis grid; larger is faster)")
    parser.add_argument("--spectype", type=str.upper, choices=("GALAXY", "QSO", "STAR"),
                        help="only the training spectra of this class (spectype column; GALAXY without one)")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when present)")
    parser.add_argument("--out", type=Path, default=Path("select-rank"), help="directory for rank.json and rank.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Cross-validate, write rank.json (+ rank.png with matplotlib), print the table; returns the exit code."""
    # imported here: zstream.nmf and zstream.redshift load torch
    from zstream.evaluate.rank import select_rank
    from zstream.redshift.train import rest_frame_rows, spectypes

    batch, _ = read_spectra(args.input)
    X, V = rest_frame_rows(batch, LogGrid(step=args.grid_step))
    if args.spectype:
        mine = np.asarray(spectypes(batch)) == args.spectype
        X, V = X[mine], V[mine]
    if X.shape[0] == 0:
        raise UserError(f"{args.input}: no spectrum has a known redshift (z column); select-rank needs a labelled set")
    selection = select_rank(X, V, args.k, folds=args.folds, seed=args.seed, max_iter=args.max_iter,
                            device=args.device, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rank.json").write_bytes(orjson.dumps(selection.to_dict(), option=orjson.OPT_INDENT_2))
    try:
        from zstream.evaluate.plots import rank_selection

        rank_selection(selection.ks, selection.mean, selection.standard_error, selection.recommended,
                       args.out / "rank.png")
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install 'zstream[plot]')")
    print("k   held-out chi2/pixel   std. error")
    for k, mean, error in zip(selection.ks, selection.mean, selection.standard_error):
        print(f"{k:<3d} {mean:19.5f}   {error:.5f}")
    print(f"recommended k = {selection.recommended} (smallest k within one standard error of the best)")
    return 0
