"""Basis files keep templates, grid and provenance, and refuse content that does not match its hash."""

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.io import Basis, load_basis, save_basis
from zstream.io.basis import BASIS_METADATA_KEY

GRID = LogGrid(3.5, 3.6, 1e-3)


def make_basis(seed: int = 0) -> Basis:
    templates = np.random.default_rng(seed).uniform(0, 1, (3, GRID.n_pixels)).astype(np.float32)
    meta = {"nmf": {"method": "nearly", "max_iter": 500, "smoothness": 0.1}, "n_training": 1200}
    return Basis(templates=templates, grid=GRID, version="v7", meta=meta)


def test_basis_round_trips_with_metadata(tmp_path):
    basis = make_basis()
    digest = save_basis(basis, tmp_path / "basis.parquet")
    loaded = load_basis(tmp_path / "basis.parquet")
    np.testing.assert_array_equal(loaded.templates, basis.templates)
    assert loaded.grid == GRID
    assert loaded.version == "v7"
    assert loaded.k == 3
    assert loaded.meta["content_hash"] == digest
    assert loaded.meta["nmf"] == basis.meta["nmf"]
    assert loaded.meta["n_training"] == 1200
    assert "created_utc" in loaded.meta


def test_different_templates_give_different_hashes(tmp_path):
    assert save_basis(make_basis(0), tmp_path / "a.parquet") != save_basis(make_basis(1), tmp_path / "b.parquet")


def test_edited_templates_fail_the_hash_check(tmp_path):
    path = tmp_path / "basis.parquet"
    save_basis(make_basis(), path)
    table = pq.read_table(path)
    tampered = make_basis(seed=5).templates
    edited = pa.table({"template": pa.array(list(tampered), pa.list_(pa.float32()))}).replace_schema_metadata(table.schema.metadata)
    pq.write_table(edited, path)
    with pytest.raises(UserError, match="content hash mismatch"):
        load_basis(path)


def test_edited_grid_metadata_fails_the_hash_check(tmp_path):
    path = tmp_path / "basis.parquet"
    save_basis(make_basis(), path)
    table = pq.read_table(path)
    meta = orjson.loads(table.schema.metadata[BASIS_METADATA_KEY])
    meta["grid"]["log10_min"] += 1e-3
    meta["grid"]["log10_max"] += 1e-3
    pq.write_table(table.replace_schema_metadata({BASIS_METADATA_KEY: orjson.dumps(meta)}), path)
    with pytest.raises(UserError, match="content hash mismatch"):
        load_basis(path)


def test_templates_of_the_wrong_length_are_refused(tmp_path):
    basis = make_basis()
    basis.templates = basis.templates[:, :-1]
    with pytest.raises(UserError, match="shape"):
        save_basis(basis, tmp_path / "basis.parquet")


def test_a_parquet_file_that_is_not_a_basis_is_refused(tmp_path):
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(UserError, match="not a zstream basis file"):
        load_basis(tmp_path / "other.parquet")
