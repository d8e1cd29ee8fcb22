"""``zstream bench decode``: message decode + validation throughput, fast path vs plain JSON Schema validation.

The baseline is the straightforward path: parse with orjson, validate the whole
record (every pixel) with the compiled JSON Schema validator, then run the same
array checks. Ours (:func:`decode_message`) type-checks the pixel arrays in bulk
and lets the validator see only the record's envelope. Arrow IPC batches are
timed too, per spectrum, for comparison with JSON.

The cost of bounded decoding (:mod:`zstream.io.limits`) is measured in the same
run: the bound checks alone are timed on the same messages (JSON: the depth and
size walk of the envelope, the id length, the pixel count; Arrow: the
end-of-stream marker, full validation, the column-name and depth checks, the
per-row id and pixel bounds) and set against the whole decode, which gives the
throughput of the same decoder without its bounds. (The new λ > 0 check looks at
the first pixel of a grid already known to increase: O(1), not timed.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa
from tqdm import tqdm

from zstream.errors import UserError
from zstream.io.limits import check_arrow_bounds, check_id_length, check_json_bounds, check_pixel_count
from zstream.io.messages import ARROW_END_OF_STREAM, ARROW_STREAM, decode_message, encode_spectrum_json, schema_envelope
from zstream.io.records import SpectrumBatch
from zstream.io.schema import json_validator
from zstream.io.table import spectra_to_table
from zstream.io.validate import check_spectrum

MUSE_PIXEL_SIZE = 1.25  # Å; MUSE covers 4750–9350 Å, 3681 pixels


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``zstream bench decode``."""
    parser = subparsers.add_parser(
        "decode",
        help="JSON message decode+validate throughput vs full JSON Schema validation (and Arrow IPC)",
        description=__doc__,
    )
    parser.add_argument("--messages", type=int, default=2000, help="JSON messages for the fast path (default 2000)")
    parser.add_argument("--baseline-messages", type=int, default=100,
                        help="of those, how many the (slow) full-schema baseline decodes (default 100)")
    parser.add_argument("--pixels", type=int, default=3681, help="pixels per spectrum (default 3681, MUSE)")
    parser.add_argument("--arrow-batch", type=int, default=256, help="spectra per Arrow IPC message (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--with-extras", action="store_true",
                        help="give each JSON message the pass-through fields the simulator sends (spectype, a per-pixel sky)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time both JSON paths and the Arrow path on the same messages; print rates and the ratio."""
    if min(args.messages, args.baseline_messages, args.arrow_batch) < 1 or args.pixels < 2:
        raise UserError("--messages, --baseline-messages and --arrow-batch must be >= 1 and --pixels >= 2")
    batch = _spectra(args.messages, args.pixels, args.seed)
    extras = {"spectype": "GALAXY", "sky": batch.flux[0]} if args.with_extras else {}
    messages = [
        encode_spectrum_json({"spectrum_id": batch.spectrum_id[i], "wavelength": batch.wavelength[i],
                              "flux": batch.flux[i], "ivar": batch.ivar[i]} | extras)
        for i in range(len(batch))
    ]
    json_seconds = _seconds(messages, lambda m: decode_message(m), "fast path")
    json_bounds = _bounds_seconds(messages, _json_prepared, _json_bounds, "json bounds")
    ours = len(messages) / json_seconds
    baseline = _rate(messages[: args.baseline_messages], _decode_with_full_schema, "full schema")
    arrow_messages = _arrow_messages(batch, args.arrow_batch)
    seconds = _seconds(arrow_messages, lambda m: decode_message(m, content_type=ARROW_STREAM, max_bytes=len(m)), "arrow ipc")
    arrow_bounds = _bounds_seconds(arrow_messages, _arrow_prepared, _arrow_bounds, "arrow bounds")
    print(f"JSON, {args.pixels} pixels, {np.mean([len(m) for m in messages]) / 1024:.0f} KiB/message")
    print(f"  decode_message (fast path):       {ours:9.0f} messages/s")
    print(f"  orjson + full JSON Schema (base): {baseline:9.0f} messages/s")
    print(f"  ratio ours/baseline:              {ours / baseline:9.2f}x")
    _print_bounds_cost(json_bounds, json_seconds, len(messages), "message", "messages")
    print(f"Arrow IPC, {args.arrow_batch} spectra/message: {len(batch) / seconds:9.0f} spectra/s")
    _print_bounds_cost(arrow_bounds, seconds, len(batch), "spectrum", "spectra")
    return 0


def _print_bounds_cost(bounds_s: float, decode_s: float, n: int, unit: str, units: str) -> None:
    """The bound checks' share of the decode time, and the throughput of the same decoder without them."""
    print(f"  bound checks alone:               {1e6 * bounds_s / n:9.2f} µs/{unit} = {bounds_s / decode_s:.2%} of decode time")
    print(f"  without bounds (decode - checks): {n / (decode_s - bounds_s):9.0f} {units}/s "
          f"(bounded / unbounded throughput {(decode_s - bounds_s) / decode_s:.3f})")


def _bounds_seconds(messages: list[bytes], prepare: Callable[[bytes], tuple], check: Callable[..., None],
                    label: str) -> float:
    """Total time of ``check(message, *prepare(message))`` alone, over ``messages`` (``prepare`` is not timed)."""
    total = 0.0
    for message in tqdm(messages, desc=label, unit=" msg", leave=False):
        prepared = prepare(message)
        started = time.perf_counter()
        check(message, *prepared)
        total += time.perf_counter() - started
    return total


def _json_prepared(message: bytes) -> tuple[dict, dict]:
    record = orjson.loads(message)
    return record, schema_envelope(record)


def _json_bounds(message: bytes, record: dict, envelope: dict) -> None:
    """The bound checks :func:`decode_message` makes on a JSON message."""
    check_json_bounds(envelope)
    check_id_length(record["spectrum_id"])
    check_pixel_count(len(record["flux"]))


def _arrow_prepared(message: bytes) -> tuple[pa.Table, list[str], list[int]]:
    table = pa.ipc.open_stream(message).read_all()
    lengths = table.column("flux").combine_chunks().value_lengths().to_pylist()
    return table, table.column("spectrum_id").to_pylist(), lengths


def _arrow_bounds(message: bytes, table: pa.Table, ids: list[str], n_pixels: list[int]) -> None:
    """The bound checks :func:`decode_message` makes on an Arrow IPC message."""
    message.endswith(ARROW_END_OF_STREAM)
    table.validate(full=True)
    check_arrow_bounds(table.schema)
    for spectrum_id, count in zip(ids, n_pixels):
        check_id_length(spectrum_id)
        check_pixel_count(count)


def _spectra(n: int, n_pixels: int, seed: int) -> SpectrumBatch:
    rng = np.random.default_rng(seed)
    wavelength = 4750.0 + MUSE_PIXEL_SIZE * np.arange(n_pixels)
    flux = rng.normal(1.0, 0.3, (n, n_pixels)).astype(np.float32)
    flux[:, rng.integers(0, n_pixels, 5)] = np.nan  # a few bad pixels, as real cubes have
    ivar = rng.uniform(0.5, 2.0, (n, n_pixels)).astype(np.float32)
    return SpectrumBatch([f"bench-{i}" for i in range(n)], [wavelength] * n, list(flux), list(ivar))


def _decode_with_full_schema(message: bytes) -> None:
    record = orjson.loads(message)
    json_validator("spectrum").validate(record)
    check_spectrum(*(np.array(record[name], dtype=np.float64) for name in ("wavelength", "flux", "ivar")))


def _arrow_messages(batch: SpectrumBatch, size: int) -> list[bytes]:
    table = spectra_to_table(batch)
    out = []
    for start in range(0, table.num_rows, size):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(start, size))
        out.append(sink.getvalue().to_pybytes())
    return out


def _seconds(messages: list[bytes], decode: Callable[[bytes], object], label: str) -> float:
    decode(messages[0])  # warm-up: compiles the validator, imports lazily loaded code
    start = time.perf_counter()
    for message in tqdm(messages, desc=label, unit=" msg", leave=False):
        decode(message)
    return time.perf_counter() - start


def _rate(messages: list[bytes], decode: Callable[[bytes], object], label: str) -> float:
    return len(messages) / _seconds(messages, decode, label)
