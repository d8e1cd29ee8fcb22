"""``zstream replay``: reprocess archived or past traffic with a pinned basis, to a file or a topic."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from zstream.errors import UserError
from zstream.evaluate import headline, score, write_report
from zstream.evaluate.score import read_truth
from zstream.io import RESULT_SCHEMA, Basis, Reason, Reject, conform_results, write_rejects, write_results
from zstream.service import clients, replay
from zstream.service.config import ServiceConfig, add_arguments, load_config, names_in_group
from zstream.io.meta import meta_json, with_meta_columns
from zstream.service.outputs import result_message, result_records
from zstream.service.processing import process_records, scan_isolating
from zstream.service.traffic import send

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


def _replay_files(args: argparse.Namespace, config: ServiceConfig, basis: Basis) -> tuple[pa.Table, list[Reject]]:
    from zstream.redshift import Scanner  # torch loads only when scanning

    scanner = Scanner(basis, config.scan_config(), device=config.device)
    tables, rejects, seen = [with_meta_columns(RESULT_SCHEMA.empty_table(), None)], [], set()
    with tqdm(desc=f"replay {args.input.name} with {basis.version}", unit=" spectra", file=sys.stderr) as progress:
        for batch, batch_rejects in replay.file_batches(args.input, config.batch_size):
            rejects.extend(batch_rejects)
            first = []
            for row, spectrum_id in enumerate(batch.spectrum_id):
                if spectrum_id in seen:
                    rejects.append(Reject(spectrum_id, Reason.DUPLICATE_ID_IN_BATCH,
                                          f"spectrum_id {spectrum_id!r} already replayed from {args.input}"))
                else:
                    seen.add(spectrum_id)
                    first.append(row)
            if first:
                spectra = batch.take(first)
                results, failures = scan_isolating(scanner.scan, spectra)
                answered = [row for row in range(len(spectra)) if row not in failures]
                extra = None if spectra.extra is None else spectra.extra.take(answered)
                tables.append(with_meta_columns(results, extra))
                rejects += [Reject(spectra.spectrum_id[row], error.reason, error.detail)
                            for row, error in failures.items()]
            progress.update(len(batch) + len(batch_rejects))
    return pa.concat_tables(tables), rejects


def _replay_topic(args: argparse.Namespace, config: ServiceConfig, basis: Basis) -> tuple[pa.Table, list[Reject]]:
    from zstream.device import resolve_device
    from zstream.service.serving import build_serving  # torch loads only when scanning

    serving = build_serving(basis, config.scan_config(), resolve_device(config.device))
    span = replay.TopicRange(args.start_offset, args.end_offset, args.start_time, args.end_time,
                      tuple(args.partition) if args.partition else None)
    consumer = clients.plain_consumer(config)
    rows, rejects = [], []
    try:
        with tqdm(desc=f"replay {args.from_topic} with {basis.version}", unit=" msg", file=sys.stderr) as progress:
            for records in replay.topic_batches(consumer, args.from_topic, span, config.batch_size):
                started = time.monotonic()
                processed = process_records(records, serving, max_message_bytes=config.max_message_bytes)
                elapsed_ms = (time.monotonic() - started) * 1000.0
                rows += result_records(processed, elapsed_ms)
                rejects += [Reject(letter.spectrum_id, letter.reason, letter.detail) for letter in processed.dead_letters]
                progress.update(len(records))
    finally:
        consumer.close()
    return _rows_table(rows), rejects


def _rows_table(rows: list[dict]) -> pa.Table:
    if not rows:
        return with_meta_columns(RESULT_SCHEMA.empty_table(), None)
    return conform_results(pa.Table.from_pylist([row | {"meta": meta_json(row["meta"])} for row in rows]))


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
