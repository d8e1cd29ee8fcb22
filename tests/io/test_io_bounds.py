"""Bounded decoding: nesting depth and the size of every field are checked before anything walks a record,
so hostile input ends as a reason code (never an exception), in messages and in every file reader."""

import re

import numpy as np
import orjson
import pyarrow as pa
import pytest
from astropy.io import fits
from io_builders import make_batch

from zstream.cli import main
from zstream.io import (
    ARROW_STREAM,
    SPECTRUM_SCHEMA,
    Reason,
    RecordError,
    concat_batches,
    decode_message,
    json_schema,
    read_rejects,
    read_spectra,
    spectra_to_table,
    table_to_spectra,
)
from zstream.io import files, validate
from zstream.io.limits import MAX_DEPTH, MAX_ID_CHARS, MAX_MEMBERS, MAX_PIXELS, MAX_STRING_CHARS, MAX_VALUES
from zstream.io.reasons import MAX_DETAIL_CHARS

GOOD = {"spectrum_id": "ok-1", "wavelength": [5000.0, 5001.0, 5002.0], "flux": [1.0, 2.0, 3.0], "ivar": [1.0, 1.0, 1.0]}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def _reason_of(payload: bytes, content_type: str = "application/json") -> Reason:
    """The one reason a message that holds one spectrum is refused with (raised or as its reject)."""
    try:
        batch, rejects = decode_message(payload, content_type=content_type)
    except RecordError as error:
        return error.reason
    assert len(batch) == 0 and len(rejects) == 1
    return rejects[0].reason


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_nested(5000), id="5000-brackets"),
        pytest.param(_nested(1025), id="past-orjson-guard"),
        pytest.param(orjson.dumps(GOOD)[:-1] + b', "meta": ' + _nested(1000) + b"}", id="pass-through"),
        pytest.param(orjson.dumps(GOOD | {"flux": None}).replace(b"null", _nested(1000)), id="flux"),
        pytest.param(orjson.dumps(GOOD).replace(b"[1.0,2.0", b"[" + _nested(900) + b",2.0"), id="flux-element"),
        pytest.param(orjson.dumps(GOOD).replace(b'"ok-1"', _nested(900)), id="spectrum-id"),
        pytest.param(orjson.dumps(GOOD)[:-1] + b', "schema_version": ' + _nested(900) + b"}", id="schema-version"),
    ],
)
def test_deep_nesting_anywhere_is_too_deep(payload):
    assert _reason_of(payload) == Reason.TOO_DEEP


def test_nesting_up_to_the_bound_is_accepted_and_one_more_level_is_not():
    # the record is level 1 and a pass-through list opens level 2, so MAX_DEPTH - 1 lists reach the bound
    at_bound = orjson.dumps(GOOD)[:-1] + b', "meta": ' + _nested(MAX_DEPTH - 1) + b"}"
    batch, rejects = decode_message(at_bound)
    assert (len(batch), rejects) == (1, [])
    assert _reason_of(orjson.dumps(GOOD)[:-1] + b', "meta": ' + _nested(MAX_DEPTH) + b"}") == Reason.TOO_DEEP


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param(GOOD | {"spectrum_id": "x" * (MAX_ID_CHARS + 1)}, Reason.FIELD_TOO_LARGE, id="long-id"),
        pytest.param(GOOD | {"comment": "x" * (MAX_STRING_CHARS + 1)}, Reason.FIELD_TOO_LARGE, id="long-string"),
        pytest.param(GOOD | {f"k{i}": i for i in range(MAX_MEMBERS)}, Reason.FIELD_TOO_LARGE, id="many-fields"),
        pytest.param(GOOD | {"tags": ["t"] * MAX_VALUES}, Reason.FIELD_TOO_LARGE, id="many-values"),
        pytest.param(GOOD | {"sky": [0.5] * (MAX_PIXELS + 1)}, Reason.FIELD_TOO_LARGE, id="long-number-array"),
        pytest.param(GOOD | {"wavelength": [0.0, 5001.0, 5002.0]}, Reason.NONPOSITIVE_WAVELENGTH, id="zero-lambda"),
        pytest.param(GOOD | {"wavelength": [-2.0, -1.0, 5002.0]}, Reason.NONPOSITIVE_WAVELENGTH, id="negative-lambda"),
    ],
)
def test_oversized_fields_and_nonpositive_wavelengths_are_refused(record, reason):
    assert _reason_of(orjson.dumps(record)) == reason


def test_fields_at_their_bounds_are_accepted():
    record = GOOD | {"spectrum_id": "x" * MAX_ID_CHARS, "comment": "y" * MAX_STRING_CHARS,
                     "sky": [0.5] * 1000, "flags": ["f"] * 100} | {f"k{i}": i for i in range(MAX_MEMBERS - 8)}
    batch, rejects = decode_message(orjson.dumps(record))
    assert (len(batch), rejects) == (1, [])
    assert batch.extra.column("sky").to_pylist() == [[0.5] * 1000]


@pytest.mark.parametrize(
    "number",
    [b"9" * 5000, b"-" + b"9" * 5000, b"1e400", b"NaN", b"Infinity", b"-Infinity", b"0x10", b'"5000.0"', b"true"],
)
def test_extreme_and_non_numeric_wavelengths_are_refused(number):
    payload = orjson.dumps(GOOD).replace(b"[5000.0,", b"[" + number + b",")
    assert _reason_of(payload) in {Reason.INVALID_JSON, Reason.WRONG_TYPE}


def test_numbers_beyond_float32_in_flux_are_masked_pixels_without_warnings(recwarn):
    batch, rejects = decode_message(orjson.dumps(GOOD | {"flux": [1e300, 2.0, -1e300]}))
    assert rejects == [] and batch.n_nonfinite.tolist() == [2]
    assert batch.ivar[0].tolist() == [0.0, 1.0, 0.0]
    assert not [warning for warning in recwarn if issubclass(warning.category, RuntimeWarning)]


def test_details_are_one_bounded_line_even_when_they_quote_hostile_input():
    payloads = [orjson.dumps(GOOD | {"schema_version": "v\n" * 5000}),
                orjson.dumps(GOOD | {"z": "\n" * 5000}), b"{" + b"\n" * 5000]
    for payload in payloads:
        try:
            _, rejects = decode_message(payload)
            detail = rejects[0].detail
        except RecordError as error:
            detail = error.detail
        assert "\n" not in detail and len(detail) <= MAX_DETAIL_CHARS


def test_arrow_column_nested_too_deep_is_refused():
    data_type: pa.DataType = pa.float64()
    for _ in range(MAX_DEPTH):
        data_type = pa.list_(data_type)
    table = spectra_to_table(make_batch(n=2)).append_column("deep", pa.nulls(2, data_type))
    assert _reason_of(_ipc(table), ARROW_STREAM) == Reason.TOO_DEEP


def test_arrow_message_without_rows_is_an_empty_message():
    assert _reason_of(_ipc(SPECTRUM_SCHEMA.empty_table()), ARROW_STREAM) == Reason.EMPTY_MESSAGE


def test_every_truncation_of_an_arrow_message_is_refused():
    whole = _ipc(spectra_to_table(make_batch(n=3)))
    reasons = {_reason_of_truncated(whole[:cut]) for cut in range(0, len(whole), 7)}
    assert reasons == {Reason.INVALID_ARROW_IPC}


def _reason_of_truncated(payload: bytes) -> Reason:
    with pytest.raises(RecordError) as caught:
        decode_message(payload, content_type=ARROW_STREAM)
    return caught.value.reason


def test_arrow_rows_beyond_the_pixel_bound_and_at_zero_wavelength_are_refused_per_row():
    batch = make_batch(n=3)
    batch.wavelength[1] = np.arange(MAX_PIXELS + 1, dtype=np.float64) + 1.0
    batch.flux[1] = np.ones(MAX_PIXELS + 1, np.float32)
    batch.ivar[1] = np.ones(MAX_PIXELS + 1)
    batch.wavelength[2] = batch.wavelength[2] - batch.wavelength[2][0]
    loaded, rejects = table_to_spectra(spectra_to_table(batch))
    assert loaded.spectrum_id == [batch.spectrum_id[0]]
    assert [r.reason for r in rejects] == [Reason.FIELD_TOO_LARGE, Reason.NONPOSITIVE_WAVELENGTH]


def test_repeated_record_column_and_garbage_shared_grid_are_table_level_reasons():
    table = spectra_to_table(make_batch(n=2))
    with pytest.raises(RecordError) as caught:
        table_to_spectra(table.append_column("flux", table.column("flux")))
    assert caught.value.reason == Reason.WRONG_TYPE
    garbled = table.drop_columns(["wavelength"]).replace_schema_metadata({b"zstream:wavelength": b"[[1, 2], [3]]"})
    with pytest.raises(RecordError) as caught:
        table_to_spectra(garbled)
    assert caught.value.reason == Reason.WRONG_TYPE


def test_an_unexpected_exception_refuses_only_its_record(monkeypatch):
    real = validate.check_spectrum

    def failing(wavelength, flux, ivar, mask=None):
        if wavelength[0] == 5000.0:
            raise ZeroDivisionError("injected")
        return real(wavelength, flux, ivar, mask)

    monkeypatch.setattr(validate, "check_spectrum", failing)
    table = spectra_to_table(make_batch(n=3))
    wavelength = table.column("wavelength").to_pylist()
    wavelength[1] = [5000.0 + i for i in range(len(wavelength[1]))]
    table = table.set_column(1, "wavelength", pa.array(wavelength, pa.list_(pa.float64())))
    loaded, rejects = decode_message(_ipc(table), content_type=ARROW_STREAM)
    assert len(loaded) == 2
    assert [(r.spectrum_id, r.reason, r.detail) for r in rejects] == [
        (table.column("spectrum_id")[1].as_py(), Reason.INTERNAL_ERROR, "ZeroDivisionError: injected")]


def test_an_unexpected_exception_in_a_decoder_is_internal_error(monkeypatch):
    monkeypatch.setattr("zstream.io.messages.schema_envelope", lambda record: 1 / 0)
    with pytest.raises(RecordError) as caught:
        decode_message(orjson.dumps(GOOD))
    assert caught.value.reason == Reason.INTERNAL_ERROR
    assert caught.value.detail == "ZeroDivisionError: division by zero"


def test_validate_refuses_a_5000_deep_line_with_a_reason_and_no_traceback(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_bytes(orjson.dumps(GOOD) + b"\n" + _nested(5000) + b"\n" + b"[" * 3000 + b"\n")
    assert main(["validate", str(tmp_path / "in.jsonl"), "--rejects", str(tmp_path / "rejects.jsonl")]) == 1
    captured = capsys.readouterr()
    assert "1 accepted, 2 rejected (too_deep=2)" in captured.out
    assert "Traceback" not in captured.err
    assert [r.detail.split(":")[0] for r in read_rejects(tmp_path / "rejects.jsonl")] == ["in.jsonl line 2",
                                                                                         "in.jsonl line 3"]


def test_a_fits_file_that_makes_the_reader_raise_is_refused_alone(tmp_path, monkeypatch):
    for name in ("a", "b"):
        columns = [fits.Column(name=column, format="D", array=values)
                   for column, values in (("WAVE", np.linspace(5000, 6000, 20)), ("FLUX", np.ones(20)),
                                          ("IVAR", np.ones(20)))]
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(tmp_path / f"{name}.fits")
    real = files.read_fits_spectrum

    def surprising(path):
        if path.stem == "a":
            raise IndexError("astropy surprise")
        return real(path)

    monkeypatch.setattr(files, "read_fits_spectrum", surprising)
    batch, rejects = read_spectra(tmp_path)
    assert batch.spectrum_id == ["b"]
    assert [(r.reason, r.detail) for r in rejects] == [(Reason.INTERNAL_ERROR, "IndexError: astropy surprise")]


def test_the_json_schema_and_the_reason_table_state_the_same_bounds():
    spectrum = json_schema("spectrum")["properties"]
    assert spectrum["spectrum_id"]["maxLength"] == MAX_ID_CHARS
    assert {spectrum[name]["maxItems"] for name in ("wavelength", "flux", "ivar", "mask")} == {MAX_PIXELS}
    assert spectrum["wavelength"]["items"]["exclusiveMinimum"] == 0
    numbers = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", Reason.FIELD_TOO_LARGE.description)}
    assert numbers == {MAX_ID_CHARS, MAX_PIXELS, MAX_STRING_CHARS, MAX_MEMBERS, MAX_VALUES}
    assert str(MAX_DEPTH) in Reason.TOO_DEEP.description


def test_bench_decode_reports_what_the_bounds_cost(capsys):
    assert main(["bench", "decode", "--messages", "6", "--baseline-messages", "2", "--pixels", "64",
                 "--arrow-batch", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("bound checks alone") == 2 and out.count("bounded / unbounded throughput") == 2


def test_an_arrow_message_with_too_many_columns_is_refused():
    table = spectra_to_table(make_batch(n=2))
    for i in range(MAX_MEMBERS):
        table = table.append_column(f"x{i}", pa.array([i, i]))
    assert _reason_of(_ipc(table), ARROW_STREAM) == Reason.FIELD_TOO_LARGE


def test_batches_whose_pass_through_columns_clash_join_without_failing():
    batches = [decode_message(orjson.dumps(GOOD | {"spectrum_id": f"s{i}", "sky": [1.0, 2.0, 3.0]}))[0]
               for i in range(3)]
    batches.insert(1, decode_message(orjson.dumps(GOOD | {"spectrum_id": "odd", "sky": {"k": [[1]]}}))[0])
    joined = concat_batches(batches)
    assert joined.spectrum_id == ["s0", "odd", "s1", "s2"]
    assert joined.extra.column("sky").to_pylist() == [[1.0, 2.0, 3.0], None, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]


def test_jsonl_chunks_with_clashing_pass_through_types_are_read(tmp_path):
    lines = [orjson.dumps(GOOD | {"spectrum_id": "a", "meta": {"x": 1}}), orjson.dumps(GOOD | {"spectrum_id": "b", "meta": [1]})]
    (tmp_path / "s.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    batch, rejects = read_spectra(tmp_path / "s.jsonl", batch_size=1)
    assert batch.spectrum_id == ["a", "b"] and rejects == []
    assert batch.extra.column("meta").to_pylist() == [{"x": 1}, None]
