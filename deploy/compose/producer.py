"""Replay a JSONL file of spectrum records into a Kafka topic at a steady rate.

The compose stack's stand-in for an observatory's reduction system: one message
per line, keyed by ``spectrum_id`` so a spectrum always lands on the same
partition, with the JSON content type in a header. Lines are sent as they are
(no re-encoding), so malformed lines reach the service and its dead-letter topic
exactly as a broken upstream would send them.

    python producer.py --bootstrap-servers kafka:9092 --topic spectra --rate 20 spectra.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
from kafka import KafkaProducer
from tqdm import tqdm

from zstream.service.clients import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE
from zstream.service.config import ServiceConfig

HEADERS = [(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.encode())]


def message_key(line: bytes) -> bytes | None:
    """Return the record's ``spectrum_id`` as the message key, or None when the line has none.

    Parameters
    ----------
    line : bytes
        One JSONL line.

    Returns
    -------
    bytes or None
        UTF-8 ``spectrum_id``; None for lines that are not a JSON object with a string id.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    spectrum_id = record.get("spectrum_id") if isinstance(record, dict) else None
    return spectrum_id.encode() if isinstance(spectrum_id, str) else None


def iter_lines(paths: Sequence[Path]) -> Iterator[bytes]:
    """Yield the non-blank lines of each JSONL file, in order, without their line ends."""
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                line = line.strip()
                if line:
                    yield line


def replay(producer: KafkaProducer, topic: str, lines: Iterator[bytes], rate: float, progress: tqdm) -> int:
    """Send every line to ``topic``, at most ``rate`` messages per second (0 = unthrottled).

    Returns
    -------
    int
        Number of messages sent (all acknowledged: the producer is flushed).
    """
    start = time.monotonic()
    sent = 0
    for line in lines:
        if rate > 0:
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        producer.send(topic, value=line, key=message_key(line), headers=HEADERS)
        sent += 1
        progress.update()
    producer.flush()
    return sent


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the producer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="JSONL files of spectrum records, one record per line")
    parser.add_argument("--bootstrap-servers", default="localhost:9092", help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default="spectra", help="input topic of the zstream service (default: spectra)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second; 0 sends as fast as possible (default: 20)")
    largest = ServiceConfig().max_message_bytes
    parser.add_argument("--max-request-size", type=int, default=largest,
                        help=f"largest message in bytes (default: the service's limit, {largest})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Replay the files; one-line error and exit 2 for a missing file or a negative rate."""
    args = build_parser().parse_args(argv)
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        print(f"producer: error: {len(missing)} input file(s) not found: {', '.join(missing)}; pass existing JSONL files", file=sys.stderr)
        return 2
    if args.rate < 0:
        print(f"producer: error: --rate is {args.rate}; pass 0 (unthrottled) or a positive rate", file=sys.stderr)
        return 2
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap_servers.split(","),
        max_request_size=args.max_request_size,
        acks="all",
        linger_ms=5,
    )
    try:
        with tqdm(unit="msg", desc=f"-> {args.topic}", file=sys.stderr) as progress:
            sent = replay(producer, args.topic, iter_lines(args.files), args.rate, progress)
    finally:
        producer.close()
    print(f"producer: sent {sent} messages to {args.topic}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
