"""``zstream replay``: reprocess archived or past traffic with a pinned basis, to a file or a topic."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from zstream.errors import UserError
from zstream.evaluate import headline, score, write_report
from zstream.evaluate.scoring import read_truth
from zstream.io import Basis, Reject, write_rejects, write_results
from zstream.service import clients, replay
from zstream.service.config import ServiceConfig, add_arguments, load_config, names_in_group
from zstream.service.message import send
from zstream.service.outputs import result_message

_SETTINGS = ["bootstrap_servers", "basis_topic", "basis", "archive", "z_min", "z_max", "z_step", "calibration", "thresholds",
             "device", "batch_size", "max_message_bytes", *names_in_group("security")]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay`` to the top-level parser."""
    parser = subparsers.add_parser(
        "replay",
        help="reprocess an archive, spectrum file or topic range with a pinned basis version",
        description=(
            "Re-run the redshift scan over past data with one pinned basis, deterministically: from a service "
            "archive directory, a Parquet/JSONL spectrum file, or a topic between offsets or timestamps (decoded "
            "exactly as the live service does). Results go to a file (--out) or a topic (--to-topic); refused "
            "records to a rejects file. With --truth the results are scored and an evaluation report written."
        ),
    )
    source = parser.add_argument_group("source (one of)")
    source.add_argument("--input", type=Path, help="archive directory, or spectrum file/dataset (Parquet, JSONL, ...)")
    source.add_argument("--from-topic", metavar="TOPIC", help="replay messages of this topic (needs --bootstrap-servers)")
    span = parser.add_argument_group("topic range (with --from-topic)")
    span.add_argument("--start-offset", type=int, help="first offset, every selected partition (default: beginning)")
    span.add_argument("--end-offset", type=int, help="stop before this offset (default: current end)")
    span.add_argument("--start-time", type=_timestamp, help="first message at/after this time (ISO 8601, UTC if no zone)")
    span.add_argument("--end-time", type=_timestamp, help="stop at messages at/after this time (ISO 8601)")
    span.add_argument("--partition", type=int, action="append", help="replay only this partition (repeatable)")
    parser.add_argument("--basis-version", help="pinned basis version, from the archive's bases/ or the basis topic")
    sink = parser.add_argument_group("output (one of)")
    sink.add_argument("--out", type=Path, help="results file (.parquet or .jsonl)")
    sink.add_argument("--to-topic", metavar="TOPIC", help="produce results to this topic")
    parser.add_argument("--rejects", type=Path, help="rejects file (default: next to --out as NAME.rejects.SUFFIX)")
    parser.add_argument("--truth", type=Path, help="truth table: score the results and write an evaluation report")
    parser.add_argument("--report", type=Path, help="report directory for --truth (default: next to --out)")
    add_arguments(parser, _SETTINGS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream replay``."""
    if (args.input is None) == (args.from_topic is None):
        raise UserError("replay: give exactly one source, --input PATH or --from-topic TOPIC")
    if (args.out is None) == (args.to_topic is None):
        raise UserError("replay: give exactly one output, --out FILE or --to-topic TOPIC")
    if args.truth is not None and args.report is None and args.out is None:
        raise UserError("replay: --truth with --to-topic needs --report DIR")
    config = load_config(args)
    archive = args.input if args.input is not None and replay.is_archive(args.input) else config.archive
    basis = replay.resolve_basis(config, args.basis_version, archive)
    results, rejects = _replay_topic(args, config, basis) if args.from_topic else _replay_files(args, config, basis)
    _write(args, config, results, rejects)
    if args.truth is not None:
        _evaluate(args, results)
    return 0


def _serving(config: ServiceConfig, basis: Basis):
    from zstream.device import resolve_device
    from zstream.service.serving import build_serving  # torch loads only when scanning

    return build_serving(basis, config.scan_config(), resolve_device(config.device))


def _replay_files(args: argparse.Namespace, config: ServiceConfig, basis: Basis) -> tuple[pa.Table, list[Reject]]:
    serving = _serving(config, basis)
    with tqdm(desc=f"replay {args.input.name} with {basis.version}", unit=" spectra", file=sys.stderr) as progress:
        return replay.replay_files(args.input, serving, config.batch_size, progress.update)


def _replay_topic(args: argparse.Namespace, config: ServiceConfig, basis: Basis) -> tuple[pa.Table, list[Reject]]:
    serving = _serving(config, basis)
    span = replay.TopicRange(args.start_offset, args.end_offset, args.start_time, args.end_time,
                             tuple(args.partition) if args.partition else None)
    consumer = clients.plain_consumer(config)
    try:
        with tqdm(desc=f"replay {args.from_topic} with {basis.version}", unit=" msg", file=sys.stderr) as progress:
            return replay.replay_topic(consumer, args.from_topic, span, serving, config, progress.update)
    finally:
        consumer.close()


def _write(args: argparse.Namespace, config: ServiceConfig, results: pa.Table, rejects: list[Reject]) -> None:
    if args.out is not None:
        write_results(args.out, results)
        print(f"{results.num_rows} results → {args.out}")
    else:
        producer = clients.producer(config)
        try:
            send(producer, args.to_topic, (result_message(row) for row in results.to_pylist()))
        finally:
            producer.close(timeout=10)
        print(f"{results.num_rows} results → topic {args.to_topic}")
    rejects_path = args.rejects or (args.out.with_name(f"{args.out.stem}.rejects{args.out.suffix}") if args.out else None)
    if rejects_path is not None and (rejects or args.rejects):
        write_rejects(rejects_path, rejects)
        print(f"{len(rejects)} rejects → {rejects_path}")
    elif rejects:
        print(f"{len(rejects)} records refused (pass --rejects PATH to keep them)")


def _evaluate(args: argparse.Namespace, results: pa.Table) -> None:
    truth = read_truth(args.truth)
    report = score(results, truth)
    report_dir = args.report or args.out.with_name(f"{args.out.stem}-report")
    written = write_report(report, report_dir, results=results, truth=truth)
    for name, value in headline(report).items():
        print(f"{name:18s} {'–' if value is None else f'{value:.4f}'}")
    print(f"report: {written['html']}")


def _timestamp(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-23T17:00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
