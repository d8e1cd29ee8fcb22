"""Result files written before a nullable column existed stay readable; required columns stay required."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zstream.errors import UserError
from zstream.io import RESULT_SCHEMA, read_results
from zstream.io.results import LATER_RESULT_COLUMNS as NEWER


def old_results() -> pa.Table:
    row = {"spectrum_id": "a", "z": 0.5, "z_err": 1e-4, "chi2_min": 900.0, "delta_chi2": 0.3, "robustness": 2.0,
           "is_source": True, "is_blend": False, "blend_score": 0.0, "z_blend": None, "coefficients": [1.0],
           "basis_version": "v1", "warnings": 0, "n_pixels_used": 1000}
    schema = pa.schema([field for field in RESULT_SCHEMA if field.name not in NEWER])
    return pa.Table.from_pylist([row], schema=schema)


def test_an_older_result_file_reads_with_null_new_columns(tmp_path):
    pq.write_table(old_results(), tmp_path / "old.parquet")
    table = read_results(tmp_path / "old.parquet")
    assert table.schema.names[: len(RESULT_SCHEMA)] == RESULT_SCHEMA.names
    assert all(table.column(name).null_count == 1 for name in NEWER)
    assert table.column("z").to_pylist() == [0.5]


@pytest.mark.parametrize("name", ["basis_version", "blend_score"])
def test_a_missing_original_column_is_still_refused(tmp_path, name):
    pq.write_table(old_results().drop_columns([name]), tmp_path / "broken.parquet")
    with pytest.raises(UserError, match=name):
        read_results(tmp_path / "broken.parquet")
