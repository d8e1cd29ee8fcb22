"""Every kind of bad input is a reject with its own reason code (or a masked, counted pixel), never a crash."""

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from io_builders import make_batch

from zstream.errors import UserError
from zstream.io import (
    ARROW_STREAM,
    Reason,
    RecordError,
    decode_json_records,
    decode_message,
    read_rejects,
    read_spectra,
    spectra_to_table,
    table_to_spectra,
    write_rejects,
    write_spectra,
)

GOOD = {"spectrum_id": "ok-1", "wavelength": [5000.0, 5001.0, 5002.0], "flux": [1.0, 2.0, 3.0], "ivar": [1.0, 1.0, 1.0]}


def _without(field: str) -> dict:
    return {key: value for key, value in GOOD.items() if key != field}


REJECTED_RECORDS = [
    pytest.param(_without("ivar"), Reason.MISSING_FIELD, id="missing-ivar"),
    pytest.param(_without("spectrum_id"), Reason.MISSING_FIELD, id="missing-id"),
    pytest.param(GOOD | {"flux": None}, Reason.MISSING_FIELD, id="null-flux"),
    pytest.param(GOOD | {"spectrum_id": ""}, Reason.MISSING_FIELD, id="empty-id"),
    pytest.param(GOOD | {"flux": "1,2,3"}, Reason.WRONG_TYPE, id="flux-string"),
    pytest.param(GOOD | {"flux": ["1", "2", "3"]}, Reason.WRONG_TYPE, id="flux-items-strings"),
    pytest.param(GOOD | {"ivar": [True, True, True]}, Reason.WRONG_TYPE, id="ivar-items-booleans"),
    pytest.param(GOOD | {"wavelength": [[5000.0], [5001.0], [5002.0]]}, Reason.WRONG_TYPE, id="nested-wavelength"),
    pytest.param(GOOD | {"spectrum_id": 17}, Reason.WRONG_TYPE, id="numeric-id"),
    pytest.param(GOOD | {"z": "0.5"}, Reason.WRONG_TYPE, id="z-string"),
    pytest.param(GOOD | {"mask": [0, 1, 0]}, Reason.WRONG_TYPE, id="mask-ints"),
    pytest.param(GOOD | {"flux": [1.0, 2.0]}, Reason.LENGTH_MISMATCH, id="short-flux"),
    pytest.param(GOOD | {"mask": [False]}, Reason.LENGTH_MISMATCH, id="short-mask"),
    pytest.param(GOOD | {"wavelength": [5000.0, None, 5002.0]}, Reason.NONFINITE_WAVELENGTH, id="null-wavelength"),
    pytest.param(GOOD | {"ivar": [1.0, -1.0, 1.0]}, Reason.NEGATIVE_IVAR, id="negative-ivar"),
    pytest.param(GOOD | {"wavelength": [], "flux": [], "ivar": []}, Reason.EMPTY_SPECTRUM, id="empty-arrays"),
    pytest.param(GOOD | {"wavelength": [5002.0, 5001.0, 5000.0]}, Reason.UNSORTED_WAVELENGTH, id="unsorted"),
    pytest.param(GOOD | {"wavelength": [5000.0, 5000.0, 5002.0]}, Reason.UNSORTED_WAVELENGTH, id="duplicated"),
    pytest.param(GOOD | {"schema_version": "2"}, Reason.UNKNOWN_SCHEMA_VERSION, id="schema-v2"),
    pytest.param([GOOD], Reason.WRONG_TYPE, id="array-not-object"),
]


@pytest.mark.parametrize(("record", "reason"), REJECTED_RECORDS)
def test_bad_json_record_is_rejected_with_its_reason(record, reason):
    batch, rejects = decode_message(orjson.dumps(record))
    assert len(batch) == 0
    assert [r.reason for r in rejects] == [reason]
    assert rejects[0].detail


def test_rejects_name_the_spectrum_when_its_id_is_readable():
    _, rejects = decode_message(orjson.dumps(GOOD | {"ivar": [1.0, -1.0, 1.0]}))
    assert rejects[0].spectrum_id == "ok-1"
    assert "1 of 3" in rejects[0].detail


def test_current_schema_version_is_accepted():
    batch, rejects = decode_message(orjson.dumps(GOOD | {"schema_version": "1"}))
    assert (len(batch), rejects) == (1, [])


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"spectrum_id": "\xff\xfe", "wavelength": [1.0], "flux": [1.0], "ivar": [1.0]}', id="raw-bytes"),
        pytest.param(b'{"spectrum_id": "a\\udc80", "wavelength": [1.0], "flux": [1.0], "ivar": [1.0]}', id="lone-surrogate"),
    ],
)
def test_non_utf8_id_in_json_is_refused_with_its_reason(payload):
    with pytest.raises(RecordError) as caught:
        decode_message(payload)
    assert caught.value.reason == Reason.INVALID_UTF8_ID


@pytest.mark.parametrize(
    ("payload", "content_type", "reason"),
    [
        (b'{"spectrum_id": "a", "flux": [1', "application/json", Reason.INVALID_JSON),
        (b"", "application/json", Reason.INVALID_JSON),
        (b"\x00\x01 not arrow", ARROW_STREAM, Reason.INVALID_ARROW_IPC),
        (orjson.dumps(GOOD), "text/csv", Reason.UNSUPPORTED_CONTENT_TYPE),
    ],
)
def test_unreadable_message_raises_record_error(payload, content_type, reason):
    with pytest.raises(RecordError) as caught:
        decode_message(payload, content_type=content_type)
    assert caught.value.reason == reason


def test_oversized_message_is_refused_before_decoding():
    garbage = b"\xff" * 2048  # would be invalid JSON if it were decoded
    with pytest.raises(RecordError) as caught:
        decode_message(garbage, max_bytes=1024)
    assert caught.value.reason == Reason.OVERSIZED_MESSAGE
    assert "2048" in caught.value.detail


def test_message_at_the_limit_is_accepted():
    payload = orjson.dumps(GOOD)
    assert len(decode_message(payload, max_bytes=len(payload))[0]) == 1


def test_nonfinite_flux_and_ivar_pixels_are_masked_and_counted():
    batch = make_batch(n=2)
    batch.flux[0][[3, 7]] = np.nan
    batch.ivar[0][10] = np.inf
    batch.flux[1][0] = -np.inf
    loaded, rejects = table_to_spectra(spectra_to_table(batch))
    assert rejects == []
    assert loaded.n_nonfinite.tolist() == [3, 1]
    assert np.flatnonzero(loaded.ivar[0] == 0).tolist() == [3, 7, 10]
    assert np.all(np.isfinite(loaded.flux[0])) and np.all(np.isfinite(loaded.ivar[0]))


def test_null_flux_in_json_is_masked_and_counted():
    batch, rejects = decode_message(orjson.dumps(GOOD | {"flux": [1.0, None, 3.0]}))
    assert rejects == []
    assert batch.n_nonfinite.tolist() == [1]
    assert batch.ivar[0].tolist() == [1.0, 0.0, 1.0]


def test_mask_column_folds_into_zero_ivar_without_counting_as_nonfinite():
    batch = make_batch(n=2)
    table = spectra_to_table(batch)
    masks = [np.zeros(len(w), dtype=bool) for w in batch.wavelength]
    masks[1][[0, 5]] = True
    table = table.append_column("mask", pa.array([m.tolist() for m in masks], pa.list_(pa.bool_())))
    loaded, _ = table_to_spectra(table)
    assert np.flatnonzero(loaded.ivar[1] == 0).tolist() == [0, 5]
    assert np.all(loaded.ivar[0] > 0)
    assert loaded.n_nonfinite.tolist() == [0, 0]
    assert "mask" not in (loaded.extra.column_names if loaded.extra is not None else [])


def test_bad_rows_in_a_table_are_rejected_and_good_rows_kept_with_their_extras():
    batch = make_batch(n=5)
    batch.wavelength[1] = batch.wavelength[1][::-1].copy()
    batch.wavelength[2] = batch.wavelength[2].copy()
    batch.wavelength[2][4] = np.nan
    batch.ivar[3] = -batch.ivar[3]
    loaded, rejects = table_to_spectra(spectra_to_table(batch))
    assert loaded.spectrum_id == [batch.spectrum_id[0], batch.spectrum_id[4]]
    assert loaded.extra.to_pylist() == batch.extra.take([0, 4]).to_pylist()
    assert [(r.spectrum_id, r.reason) for r in rejects] == [
        (batch.spectrum_id[1], Reason.UNSORTED_WAVELENGTH),
        (batch.spectrum_id[2], Reason.NONFINITE_WAVELENGTH),
        (batch.spectrum_id[3], Reason.NEGATIVE_IVAR),
    ]


def test_null_and_invalid_utf8_ids_in_arrow_rows_are_rejected():
    table = spectra_to_table(make_batch(n=3))
    ids = pa.array([b"fine", None, b"\xff\xfebad"], pa.binary())
    table = table.set_column(0, "spectrum_id", ids)
    loaded, rejects = table_to_spectra(table)
    assert loaded.spectrum_id == ["fine"]
    assert [r.reason for r in rejects] == [Reason.MISSING_FIELD, Reason.INVALID_UTF8_ID]


def test_null_list_row_and_row_schema_version_in_arrow():
    table = spectra_to_table(make_batch(n=3))
    flux = table.column("flux").to_pylist()
    flux[0] = None
    table = table.set_column(table.schema.get_field_index("flux"), "flux", pa.array(flux, pa.list_(pa.float32())))
    table = table.append_column("schema_version", pa.array([None, "1", "9"]))
    _, rejects = table_to_spectra(table)
    assert [r.reason for r in rejects] == [Reason.MISSING_FIELD, Reason.UNKNOWN_SCHEMA_VERSION]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t.drop_columns(["ivar"]), Reason.MISSING_FIELD),
        (lambda t: t.set_column(2, "flux", pa.array([["1"]] * t.num_rows, pa.list_(pa.string()))), Reason.WRONG_TYPE),
        (lambda t: t.set_column(0, "spectrum_id", pa.array(range(t.num_rows))), Reason.WRONG_TYPE),
        (lambda t: t.set_column(t.schema.get_field_index("z"), "z", pa.array(["0.1"] * t.num_rows)), Reason.WRONG_TYPE),
    ],
)
def test_table_level_problem_in_an_arrow_message_is_a_record_error(change, reason):
    table = change(spectra_to_table(make_batch(n=2)))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(RecordError) as caught:
        decode_message(sink.getvalue().to_pybytes(), content_type=ARROW_STREAM)
    assert caught.value.reason == reason


def test_table_level_problem_in_a_file_is_a_one_line_user_error(tmp_path):
    pq.write_table(spectra_to_table(make_batch()).drop_columns(["flux"]), tmp_path / "s.parquet")
    with pytest.raises(UserError, match=r"s\.parquet: missing_field: column\(s\) flux missing"):
        read_spectra(tmp_path / "s.parquet")


@pytest.mark.parametrize("path", ["missing.parquet", "notes.csv"])
def test_missing_or_unsupported_input_is_a_user_error(tmp_path, path):
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="no such file|unsupported input"):
        read_spectra(tmp_path / path)


@pytest.mark.parametrize("grid", [np.array([3.0, 2.0, 1.0]), np.array([]), np.array([1.0, np.nan])])
def test_bad_shared_grid_is_a_user_error(tmp_path, grid):
    write_spectra(tmp_path / "s.parquet", make_batch())
    with pytest.raises(UserError, match="strictly increasing"):
        read_spectra(tmp_path / "s.parquet", wavelength=grid)


def test_jsonl_with_bad_lines_rejects_them_by_line_number(tmp_path):
    lines = [orjson.dumps(GOOD), b"{not json", b"", orjson.dumps(GOOD | {"spectrum_id": "neg", "ivar": [-1.0, 1.0, 1.0]})]
    (tmp_path / "s.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    loaded, rejects = read_spectra(tmp_path / "s.jsonl")
    assert loaded.spectrum_id == ["ok-1"]
    assert [(r.spectrum_id, r.reason) for r in rejects] == [(None, Reason.INVALID_JSON), ("neg", Reason.NEGATIVE_IVAR)]
    assert rejects[0].detail.startswith("s.jsonl line 2:")


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_rejects_file_round_trip(tmp_path, suffix):
    _, rejects = decode_message(orjson.dumps(GOOD | {"ivar": [1.0, -1.0, 1.0]}))
    rejects += decode_json_records([b'{"spectrum_id": "\xff", "wavelength": [1.0], "flux": [1.0], "ivar": [1.0]}'])[1]
    write_rejects(tmp_path / f"rejects{suffix}", rejects)
    assert read_rejects(tmp_path / f"rejects{suffix}") == rejects


def test_json_mask_folds_into_zero_ivar():
    batch, rejects = decode_message(orjson.dumps(GOOD | {"mask": [False, True, False]}))
    assert rejects == []
    assert batch.ivar[0].tolist() == [1.0, 0.0, 1.0]
    assert batch.n_nonfinite.tolist() == [0]


def test_content_type_parameters_are_ignored():
    batch, _ = decode_message(orjson.dumps(GOOD), content_type="Application/JSON; charset=utf-8")
    assert batch.spectrum_id == ["ok-1"]


def test_shared_grid_for_jsonl_is_refused_not_ignored(tmp_path):
    (tmp_path / "s.jsonl").write_bytes(orjson.dumps(GOOD) + b"\n")
    with pytest.raises(UserError, match="Parquet/Arrow tables only"):
        read_spectra(tmp_path / "s.jsonl", wavelength=np.array([1.0, 2.0, 3.0]))
