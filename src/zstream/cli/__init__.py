"""The ``zstream`` command: one sub-command per module listed in ``COMMANDS``.

Each listed module exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from zstream import __version__

COMMANDS: tuple[str, ...] = (
    "zstream.cli.bench",
    "zstream.cli.simulate",
    "zstream.cli.evaluate",
    "zstream.cli.calibrate",
    "zstream.cli.select_rank",
    "zstream.cli.validate",
    "zstream.cli.serve",
    "zstream.cli.replay",
    "zstream.cli.basis",
    "zstream.cli.anchors",
    "zstream.cli.demo",
    "zstream.cli.fit",
    "zstream.cli.scan",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="zstream",
        description="Streaming NMF redshifts: learn templates, scan redshifts, serve a Kafka stream.",
    )
    parser.add_argument("--version", action="version", version=f"zstream {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"zstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = describe_user_error(error)
        if message is None or args.debug:
            raise
        print(f"zstream {args.command}: error: {message}", file=sys.stderr)
        return 2


def describe_user_error(error: BaseException) -> str | None:
    """One-line text for an error the user can fix (bad input, unreachable broker); ``None`` for a bug."""
    if isinstance(error, (KafkaConnectionError, KafkaTimeoutError)):
        return f"cannot reach Kafka ({type(error).__name__}); check --bootstrap-servers and that the broker is up"
    if isinstance(error, KafkaError):
        return f"Kafka error: {error}"
    if isinstance(error, (ValueError, FileNotFoundError, PermissionError)):
        return str(error)
    return None

