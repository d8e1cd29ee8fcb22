"""``zstream basis list|show|rollback|publish``: manage the basis versions on the basis topic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zstream.errors import UserError
from zstream.io import load_basis
from zstream.service import clients
from zstream.service.config import ServiceConfig, add_arguments, load_config, names_in_group
from zstream.service.versions import BasisLog, BasisTopicReader, point_serving, publish_basis

_SETTINGS = ["bootstrap_servers", "basis_topic", "max_message_bytes", *names_in_group("security")]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``basis`` and its actions to the top-level parser."""
    parser = subparsers.add_parser(
        "basis",
        help="list, show, roll back or publish basis versions (the compacted basis topic)",
        description=(
            "Every replica serves the version named by the 'serving' record of the basis topic and swaps "
            "between batches when it changes. These commands read and move that pointer."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list versions; * marks the serving one")
    show = actions.add_parser("show", help="print one version's metadata as JSON")
    show.add_argument("version", nargs="?", help="version id (default: the serving one)")
    rollback = actions.add_parser("rollback", help="serve an earlier version again (default: the previous one)")
    rollback.add_argument("version", nargs="?", help="version id to serve (default: the one served before)")
    rejected = actions.add_parser("rejected", help="refit candidates the promotion gates refused, with reasons (JSON lines)")
    publish = actions.add_parser("publish", help="add a basis file as a version (and serve it with --serve)")
    publish.add_argument("file", type=Path, help="basis file written by 'zstream fit'")
    publish.add_argument("--serve", action="store_true", help="make it the serving version right away")
    for action in (listing, show, rollback, rejected, publish):
        add_arguments(action, _SETTINGS)
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream basis ACTION``."""
    config = load_config(args)
    log = _read(config)
    if args.action == "list":
        _print_list(log)
    elif args.action == "show":
        version = args.version or _serving(log, config)
        basis = log.basis(version)
        print(json.dumps({"version": basis.version, "k": basis.k, "grid": basis.grid.to_dict(),
                          "serving": version == log.serving_version, **basis.meta}, indent=2, default=str))
    elif args.action == "rejected":
        for record in log.rejections.values():
            print(json.dumps(record, default=str))
    elif args.action == "rollback":
        current = _serving(log, config)
        target = args.version or (log.serving or {}).get("previous")
        if target is None:
            raise UserError(f"basis rollback: serving version {current} records no previous one; name a version")
        log.basis(target)  # fails with the list of known versions when absent
        _point(config, target, previous=current, reason="rollback")
        print(f"serving {target} (was {current})")
    else:
        basis = load_basis(args.file)
        producer = clients.producer(config)
        try:
            publish_basis(producer, config.basis_topic, basis)
            if args.serve:
                point_serving(producer, config.basis_topic, basis.version, previous=log.serving_version,
                              reason="published")
        finally:
            producer.close(timeout=10)
        print(f"published {basis.version}{' (serving)' if args.serve else ''}")
    return 0


def _read(config: ServiceConfig) -> BasisLog:
    reader = BasisTopicReader(clients.plain_consumer(config), config.basis_topic)
    try:
        return reader.catch_up()
    finally:
        reader.close()


def _serving(log: BasisLog, config: ServiceConfig) -> str:
    if log.serving_version is None:
        raise UserError(f"basis topic {config.basis_topic!r} names no serving version yet; start 'zstream serve --basis'")
    return log.serving_version


def _point(config: ServiceConfig, version: str, *, previous: str, reason: str) -> None:
    producer = clients.producer(config)
    try:
        point_serving(producer, config.basis_topic, version, previous=previous, reason=reason)
    finally:
        producer.close(timeout=10)


def _print_list(log: BasisLog) -> None:
    if not log.versions:
        print("no basis versions on the topic")
        return
    print(f"  {'version':32s} {'k':>3s} {'created (UTC)':26s} {'trained on':>10s}  parent")
    for version in log.versions:
        meta = log.basis(version).meta
        mark = "*" if version == log.serving_version else " "
        print(f"{mark} {version:32s} {meta.get('k', '?'):>3} {str(meta.get('created_utc', '?')):26s} "
              f"{str(meta.get('n_training_spectra', '?')):>10s}  {meta.get('parent_version') or '-'}")
