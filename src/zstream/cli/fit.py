"""``zstream fit``: learn a rest-frame NMF basis from spectra with known redshift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.io.files import PARQUET_SUFFIXES, iter_spectra


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` sub-command."""
    parser = subparsers.add_parser(
        "fit",
        help="learn a basis: de-redshift training spectra, Nearly-NMF with sequential templates",
        description=(
            "Fit out the sky residuals of every spectrum of INPUT that has a known z (when it has a sky column), "
            "de-redshift it onto the shared log-λ rest grid (Bourahma et al. 2026, Sect. 3.2), and factorise each "
            "spectral class (spectype column: GALAXY, QSO, STAR; GALAXY without one) with Nearly-NMF building "
            "templates one at a time (Green & Bailey); write the one basis file the scanner and the service load."
        ),
    )
    parser.add_argument("--input", type=Path, required=True, help="training spectra with a z column (.parquet, .arrow, .jsonl, .fits)")
    parser.add_argument(
        "--k", type=_parse_k, default=None,
        help="templates per class: one integer for every class, or GALAXY=10,QSO=4,STAR=5 "
             "(default: GALAXY=10,QSO=4,STAR=5, from K-fold rank selection; see BENCHMARKS.md)",
    )
    parser.add_argument("--out", type=Path, required=True, help="basis file to write (.parquet)")
    parser.add_argument("--method", default="nearly", choices=("nearly", "shift", "clip"), help="NMF variant (default nearly)")
    parser.add_argument("--max-iter", type=int, default=500, help="iterations of the joint fit (default 500)")
    parser.add_argument("--sequential-iter", type=int, default=50, help="iterations per sequential stage (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random start (default 0)")
    parser.add_argument("--version", help="basis version id (default: nmf-k<k>-<hash prefix>)")
    parser.add_argument("--wavelength", type=Path, help="shared wavelength grid (.npy or text, Å) for rows without one")
    parser.add_argument("--device", default="auto", help="torch device: cpu, cuda, auto (default auto)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="NMF precision (default float32)")
    parser.add_argument(
        "--min-coverage", type=int, default=None,
        help="zero weight and template value on rest-frame pixels seen by fewer training spectra of a class "
             "(default: a 25th of the class's spectra, at least its k templates, at most 50)",
    )
    parser.add_argument(
        "--smoothness", type=_parse_smoothness, default=None,
        help="first-difference smoothness weight of each class's templates: one number for every class, or "
             "STAR=1000,QSO=0 (default: STAR=1000, other classes 0; see BENCHMARKS.md)",
    )
    parser.add_argument(
        "--grid-step", type=float, default=LogGrid().step,
        help=f"log10 λ step of the rest grid (default {LogGrid().step:g}, about two MUSE pixels)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _parse_k(text: str) -> int | dict[str, int]:
    """``--k`` parser (imported lazily: zstream.redshift loads torch)."""
    from zstream.redshift.classes import parse_k

    return parse_k(text)


def _parse_smoothness(text: str) -> float | dict[str, float]:
    """``--smoothness`` parser (imported lazily: zstream.redshift loads torch)."""
    from zstream.redshift.classes import parse_smoothness

    return parse_smoothness(text)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream fit``."""
    from zstream.io.basis import save_basis
    from zstream.redshift import train_basis

    if args.out.suffix.lower() not in PARQUET_SUFFIXES:
        raise UserError(f"--out {args.out}: a basis file is Parquet; use a .parquet file name")
    batches, n_rejected = [], 0
    for batch, rejects in iter_spectra(args.input, wavelength=args.wavelength):
        batches.append(batch)
        n_rejected += len(rejects)
    basis = train_basis(
        batches, args.k, LogGrid(step=args.grid_step), method=args.method, max_iter=args.max_iter, sequential_iter=args.sequential_iter,
        seed=args.seed, device=args.device, dtype=args.dtype, min_coverage=args.min_coverage,
        smoothness=args.smoothness, progress=not args.quiet, version=args.version,
    )
    save_basis(basis, args.out)
    print(
        f"{args.out}: basis {basis.version} (classes {basis.meta['classes']}) from "
        f"{basis.meta['n_training_spectra']} spectra "
        f"with known z; {n_rejected} records refused by validation",
        file=sys.stderr,
    )
    return 0
