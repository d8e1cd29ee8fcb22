"""Pass-through metadata: fields outside the spectrum contract, bounded, nothing dropped silently."""

from __future__ import annotations

import orjson
import pyarrow as pa

from zstream.io import decode_result_json, encode_result_json
from zstream.io.meta import META_MAX_BYTES, meta_json, meta_rows, with_meta_columns


def test_fields_outside_the_contract_become_meta_and_contract_fields_do_not():
    extra = pa.table({"spectype": ["GALAXY", None], "sky": [[1.0], [2.0]], "ra": [150.1, 150.2],
                      "exposure_id": ["e1", None], "field": [None, None]})
    assert meta_rows(extra, 2) == [({"ra": 150.1, "exposure_id": "e1"}, []), ({"ra": 150.2}, [])]
    assert meta_rows(None, 2) == [(None, []), (None, [])]
    assert meta_rows(pa.table({"spectype": ["QSO"]}), 1) == [(None, [])]


def test_meta_is_bounded_and_names_what_it_left_out():
    extra = pa.table({"ra": [1.5], "notes": ["x" * META_MAX_BYTES], "dec": [-2.5], "history": ["y" * 3000],
                      "pipeline_version": ["2.1"]})
    [(meta, dropped)] = meta_rows(extra, 1)
    assert meta == {"ra": 1.5, "dec": -2.5, "history": "y" * 3000, "pipeline_version": "2.1"}
    assert dropped == ["notes"]
    assert len(meta_json(meta).encode()) <= META_MAX_BYTES


def test_a_meta_of_exactly_the_bound_is_kept_whole():
    padding = META_MAX_BYTES - len(b'{"a":""}')
    [(meta, dropped)] = meta_rows(pa.table({"a": ["z" * padding]}), 1)
    assert dropped == [] and len(meta_json(meta).encode()) == META_MAX_BYTES
    [(meta, dropped)] = meta_rows(pa.table({"a": ["z" * (padding + 1)]}), 1)
    assert meta is None and dropped == ["a"]


def test_values_json_cannot_hold_come_back_as_text():
    [(meta, _)] = meta_rows(pa.table({"blob": [b"\x00\x01"], "nested": [{"k": [1, 2]}]}), 1)
    assert meta["nested"] == {"k": [1, 2]} and isinstance(meta["blob"], str)


def test_result_files_hold_meta_as_json_text_and_json_records_as_an_object():
    results = pa.table({"spectrum_id": ["a", "b"]})
    table = with_meta_columns(results, pa.table({"ra": [1.0, None]}))
    assert table.column("meta").to_pylist() == ['{"ra":1.0}', None]
    assert table.column("meta_dropped").to_pylist() == [None, None]
    row = table.to_pylist()[0]
    assert orjson.loads(encode_result_json(row))["meta"] == {"ra": 1.0}


def test_result_schema_accepts_meta():
    from zstream.io import RESULT_SCHEMA

    row = {name: None for name in RESULT_SCHEMA.names} | {
        "spectrum_id": "s", "is_source": True, "is_blend": False, "coefficients": [], "basis_version": "v",
        "warnings": 0, "n_pixels_used": 1, "meta": {"ra": 1.0}, "meta_dropped": ["notes"],
    }
    assert decode_result_json(encode_result_json(row))["meta"] == {"ra": 1.0}
