"""Spectrum and result records survive every format unchanged; shared grids and pass-through columns work."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from io_builders import assert_same_spectra, make_batch

from zstream.errors import UserError
from zstream.io import (
    ARROW_STREAM,
    RESULT_SCHEMA,
    concat_batches,
    decode_message,
    decode_result_json,
    encode_result_json,
    encode_spectrum_json,
    iter_spectra,
    read_results,
    read_spectra,
    spectra_to_table,
    spectrum_records,
    table_to_spectra,
    write_results,
    write_spectra,
)


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_spectra_round_trip_through_files(tmp_path, batch, suffix):
    path = tmp_path / f"spectra{suffix}"
    write_spectra(path, batch)
    loaded, rejects = read_spectra(path)
    assert rejects == []
    assert_same_spectra(loaded, batch)
    assert loaded.n_nonfinite.tolist() == [0] * len(batch)


def test_spectra_round_trip_through_arrow_table(batch):
    loaded, rejects = table_to_spectra(spectra_to_table(batch))
    assert rejects == []
    assert_same_spectra(loaded, batch)


def test_spectra_round_trip_through_json_messages(batch):
    for i, record in enumerate(spectrum_records(batch)):
        loaded, rejects = decode_message(encode_spectrum_json(record))
        assert rejects == []
        assert loaded.spectrum_id == [batch.spectrum_id[i]]
        np.testing.assert_array_equal(loaded.wavelength[0], batch.wavelength[i])
        np.testing.assert_array_equal(loaded.flux[0], batch.flux[i])
        np.testing.assert_array_equal(loaded.ivar[0], batch.ivar[i])
        assert loaded.z[0] == batch.z[i]
        assert loaded.extra.to_pylist() == batch.extra.slice(i, 1).to_pylist()


def test_spectra_round_trip_through_arrow_ipc_message(batch):
    table = spectra_to_table(batch)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    loaded, rejects = decode_message(sink.getvalue().to_pybytes(), content_type=ARROW_STREAM)
    assert rejects == []
    assert_same_spectra(loaded, batch)


def test_spectra_without_redshift_keep_z_none(tmp_path):
    batch = make_batch(with_z=False)
    write_spectra(tmp_path / "s.parquet", batch)
    assert read_spectra(tmp_path / "s.parquet")[0].z is None


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_iter_spectra_streams_bounded_batches_in_order(tmp_path, suffix):
    batch = make_batch(n=7)
    write_spectra(tmp_path / f"s{suffix}", batch)
    chunks = [chunk for chunk, _ in iter_spectra(tmp_path / f"s{suffix}", batch_size=3)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert_same_spectra(concat_batches(chunks), batch)


def test_directory_of_parquet_files_reads_as_one_dataset(tmp_path):
    parts = [make_batch(n=3, seed=seed) for seed in (1, 2)]
    (tmp_path / "archive").mkdir()
    for seed, part in zip((1, 2), parts):
        write_spectra(tmp_path / "archive" / f"part-{seed}.parquet", part)
    loaded, rejects = read_spectra(tmp_path / "archive")
    assert rejects == []
    assert sorted(loaded.spectrum_id) == sorted(parts[0].spectrum_id + parts[1].spectrum_id)


def test_shared_wavelength_is_stored_once_in_file_metadata(tmp_path):
    batch = make_batch(shared_grid=True)
    path = tmp_path / "shared.parquet"
    write_spectra(path, batch, shared_wavelength=True)
    assert "wavelength" not in pq.read_schema(path).names
    loaded, rejects = read_spectra(path)
    assert rejects == []
    assert_same_spectra(loaded, batch)


def test_shared_wavelength_refuses_differing_grids(tmp_path, batch):
    with pytest.raises(UserError, match="differ"):
        write_spectra(tmp_path / "s.parquet", batch, shared_wavelength=True)


@pytest.mark.parametrize("grid_file", ["grid.npy", "grid.txt"])
def test_shared_wavelength_from_a_grid_file(tmp_path, grid_file):
    batch = make_batch(shared_grid=True)
    table = spectra_to_table(batch).drop_columns(["wavelength"])
    pq.write_table(table, tmp_path / "no_grid.parquet")
    grid_path = tmp_path / grid_file
    if grid_file.endswith(".npy"):
        np.save(grid_path, batch.wavelength[0])
    else:
        np.savetxt(grid_path, batch.wavelength[0], fmt="%.17g")
    loaded, rejects = read_spectra(tmp_path / "no_grid.parquet", wavelength=grid_path)
    assert rejects == []
    assert_same_spectra(loaded, batch)


def test_missing_wavelength_without_shared_grid_is_a_clear_error(tmp_path, batch):
    pq.write_table(spectra_to_table(batch).drop_columns(["wavelength"]), tmp_path / "s.parquet")
    with pytest.raises(UserError, match="wavelength.*shared wavelength grid"):
        read_spectra(tmp_path / "s.parquet")


def test_pass_through_columns_survive_untouched(tmp_path, batch):
    extra = batch.extra.append_column("tags", pa.array([["a"], [], ["b", "c"], None], pa.list_(pa.string())))
    batch.extra = extra
    write_spectra(tmp_path / "s.parquet", batch)
    loaded, _ = read_spectra(tmp_path / "s.parquet")
    assert loaded.extra.schema == extra.schema
    assert loaded.extra.to_pylist() == extra.to_pylist()


def make_results(n: int = 3, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "spectrum_id": f"r{i}",
            "z": float(rng.uniform(0, 6)),
            "z_err": float(rng.uniform(0, 1e-3)),
            "chi2_min": float(rng.uniform(100, 200)),
            "delta_chi2": float(rng.uniform(0, 1)),
            "robustness": float(rng.uniform(0, 50)),
            "is_source": bool(i % 2),
            "is_blend": i == 0,
            "blend_score": float(rng.uniform(0, 1)),
            "z_blend": float(rng.uniform(0, 6)) if i == 0 else None,
            "coefficients": rng.uniform(0, 1, 4).astype(np.float32).tolist(),
            "basis_version": "v3",
            "warnings": int(i),
            "n_pixels_used": int(rng.integers(100, 3000)),
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_results_round_trip_through_files(tmp_path, suffix):
    results = make_results()
    write_results(tmp_path / f"results{suffix}", results)
    assert read_results(tmp_path / f"results{suffix}").equals(results)


def test_results_round_trip_through_json_messages():
    for row in make_results().to_pylist():
        assert decode_result_json(encode_result_json(row)) == row


def test_results_keep_extra_columns_after_the_schema(tmp_path):
    results = make_results().append_column("field", pa.array(["A", "B", "C"]))
    write_results(tmp_path / "r.parquet", results)
    loaded = read_results(tmp_path / "r.parquet")
    assert loaded.column_names == RESULT_SCHEMA.names + ["field"]
    assert loaded.column("field").to_pylist() == ["A", "B", "C"]


def test_results_missing_a_column_are_refused(tmp_path):
    with pytest.raises(UserError, match="blend_score"):
        write_results(tmp_path / "r.parquet", make_results().drop_columns(["blend_score"]))


def test_concat_batches_keeps_rows_aligned_when_batches_differ():
    with_everything = make_batch(n=2, seed=1)
    bare = make_batch(n=3, seed=2, with_z=False)
    bare.extra = None
    joined = concat_batches([with_everything, bare])
    assert joined.spectrum_id == with_everything.spectrum_id + bare.spectrum_id
    assert joined.z[:2].tolist() == with_everything.z.tolist()
    assert np.isnan(joined.z[2:]).all()
    assert joined.extra.num_rows == 5
    assert joined.extra.column("ra").to_pylist()[2:] == [None, None, None]
    assert joined.n_nonfinite.tolist() == [0] * 5


def test_arrow_ipc_stream_file_is_read_like_an_ipc_file(tmp_path, batch):
    table = spectra_to_table(batch)
    with pa.OSFile(str(tmp_path / "s.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    loaded, rejects = read_spectra(tmp_path / "s.arrow")
    assert rejects == []
    assert_same_spectra(loaded, batch)


def test_take_keeps_every_per_row_field_aligned():
    import numpy as np
    import pyarrow as pa

    from zstream.io import SpectrumBatch

    batch = SpectrumBatch(
        ["a", "b", "c"],
        [np.arange(3.0) + i for i in range(3)],
        [np.full(3, i, np.float32) for i in range(3)],
        [np.ones(3, np.float32) * (i + 1) for i in range(3)],
        z=np.array([0.1, 0.2, 0.3]),
        extra=pa.table({"field": ["fa", "fb", "fc"]}),
        n_nonfinite=np.array([0, 1, 2]),
    )
    picked = batch.take(range(2, 0, -1))
    assert picked.spectrum_id == ["c", "b"]
    assert [f[0] for f in picked.flux] == [2.0, 1.0] and [v[0] for v in picked.ivar] == [3.0, 2.0]
    assert picked.z.tolist() == [0.3, 0.2] and picked.n_nonfinite.tolist() == [2, 1]
    assert picked.extra.column("field").to_pylist() == ["fc", "fb"]
    assert batch.take([]).spectrum_id == []
