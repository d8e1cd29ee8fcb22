"""``zstream serve``: run one replica of the streaming service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from zstream.errors import UserError
from zstream.service.config import add_arguments, load_config, reference_markdown


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the top-level parser."""
    parser = subparsers.add_parser(
        "serve",
        help="consume spectra from Kafka, produce redshift results (the streaming service)",
        description=(
            "Run one service replica: consume spectrum records from the input topic in a consumer group, "
            "scan them in batches, produce one result (or dead letter) per spectrum, commit offsets after "
            "flushing, archive confident spectra and refit the basis in the background. Settings come from "
            "--config TOML, ZSTREAM_* environment variables and flags (flags win). SIGTERM/SIGINT finish the "
            "current batch, commit and exit 0. When broker operations keep failing past --broker-retries the "
            "replica exits 2 with the batch in hand uncommitted, so its next owner processes it again."
        ),
    )
    parser.add_argument("--print-config-reference", action="store_true",
                        help="print the Markdown table of every setting and exit")
    add_arguments(parser)
    parser.set_defaults(func=run)


def configure_logging(level: str) -> None:
    """Log lines to stderr; kafka-python's own chatter only from WARNING up, one line each, unless debugging."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(max(logging.getLogger().level, logging.WARNING))
    if logging.getLogger().level > logging.DEBUG:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_one_line_kafka_errors)


def _one_line_kafka_errors(record: logging.LogRecord) -> bool:
    """kafka-python logs expected connection losses with their stack: keep the line and the error, drop the stack."""
    if record.name.startswith("kafka") and record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", None
        record.exc_info, record.exc_text = None, None
    return True


def run(args: argparse.Namespace) -> int:
    """Handler of ``zstream serve``."""
    if args.print_config_reference:
        sys.stdout.write(reference_markdown())
        return 0
    config = load_config(args)
    configure_logging(config.log_level)
    from zstream.service.replica import Replica  # torch and the scanner load only when serving
    from zstream.service.retry import RetriesExhausted

    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    try:
        Replica(config).run(stop)
    except RetriesExhausted as error:
        raise UserError(
            f"giving up on Kafka at {config.bootstrap_servers}: {error.args[0]}; offsets of the unfinished batch "
            "are not committed, so a restarted replica processes it again"
        ) from None
    except (KafkaConnectionError, KafkaTimeoutError):
        raise UserError(
            f"cannot reach Kafka at {config.bootstrap_servers}; check --bootstrap-servers and that the broker is up"
        ) from None
    except KafkaError as error:
        raise UserError(f"Kafka error talking to {config.bootstrap_servers}: {error}") from None
    return 0
