"""``zstream anchors add|count``: the labelled anchor set the promotion gate measures candidates on."""

from __future__ import annotations

import argparse
from pathlib import Path

from zstream.errors import UserError
from zstream.service.config import add_arguments, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``anchors`` and its actions to the top-level parser."""
    parser = subparsers.add_parser(
        "anchors",
        help="add labelled spectra (known z) to the anchor set that refit promotions are judged on",
        description=(
            "A refitted basis is promoted only if its good fraction on the anchor set (spectra of known redshift "
            "kept beside the archive, under <archive>/anchors/) does not drop beyond its binomial noise. The "
            "training set joins it when it is archived; add spectroscopically confirmed spectra here."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add the spectra of FILE that have a finite z")
    add.add_argument("file", type=Path, help="spectrum file with a z column (Parquet, Arrow, JSONL, FITS)")
    count = actions.add_parser("count", help="print how many anchor spectra there are")
    for action in (add, count):
        add_arguments(action, ["archive"])
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream anchors``."""
    from zstream.io import read_spectra
    from zstream.service.archive import Archive

    config = load_config(args)
    if config.archive is None:
        raise UserError("anchors: no archive; pass --archive DIR (the service's archive directory)")
    archive = Archive(config.archive)
    if args.action == "add":
        batch, rejects = read_spectra(args.file)
        if batch.z is None:
            raise UserError(f"{args.file}: no z column; anchors need known redshifts")
        added = archive.add_anchors(batch)
        print(f"{added} anchor spectra added from {args.file} ({len(batch) - added} without z, "
              f"{len(rejects)} refused) → {archive.anchors_dir}")
    else:
        anchors = archive.read_anchors(10**9)
        print(0 if anchors is None else len(anchors))
    return 0
