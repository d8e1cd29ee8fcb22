"""``zstream bench NAME``: dispatch to the benchmark modules listed in ``BENCHMARKS``.

Each listed module exposes ``register(subparsers)`` adding its own sub-parser.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS: tuple[str, ...] = (
    "zstream.bench.decode",
    "zstream.bench.limit",
    "zstream.bench.nmf",
    "zstream.bench.accuracy",
    "zstream.bench.soak",
    "zstream.bench.scan",
    "zstream.bench.stream",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and its sub-benchmarks to the top-level parser."""
    parser = subparsers.add_parser("bench", help="run a benchmark against its baseline and print the ratio")
    bench_subparsers = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for module_name in BENCHMARKS:
        importlib.import_module(module_name).register(bench_subparsers)
