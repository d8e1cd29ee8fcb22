"""Basis files: NMF templates on the rest grid plus provenance, in one Parquet file.

Layout: one row per template, column ``template`` (list<float32>, length
``grid.n_pixels``); the schema metadata key ``zstream:basis`` holds JSON with
``version``, ``k``, ``grid`` (LogGrid.to_dict), ``content_hash``, ``created_utc``
and every other entry of ``Basis.meta`` (NMF method and settings, training-set
size…). Any Arrow reader can open it; :func:`load_basis` re-hashes the content and
refuses a file that does not match.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.grid import LogGrid
from zstream.io.records import Basis

BASIS_METADATA_KEY = b"zstream:basis"
BASIS_FORMAT = "zstream-basis-1"


def content_hash(templates: np.ndarray, grid: LogGrid) -> str:
    """SHA-256 of the templates (float32, little-endian, C order) and the grid definition.

    Parameters
    ----------
    templates : ndarray, shape (k, grid.n_pixels)
    grid : LogGrid

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    digest = hashlib.sha256(orjson.dumps(grid.to_dict(), option=orjson.OPT_SORT_KEYS))
    digest.update(np.ascontiguousarray(templates, dtype="<f4").tobytes())
    return f"sha256:{digest.hexdigest()}"


def save_basis(basis: Basis, path: str | Path) -> str:
    """Write ``basis`` to a Parquet basis file; fill in ``content_hash``, ``k`` and ``created_utc``.

    Parameters
    ----------
    basis : Basis
        ``templates`` shape (k, grid.n_pixels); ``meta`` must be JSON-serialisable.
    path : str or Path

    Returns
    -------
    str
        The content hash (also stored in ``basis.meta["content_hash"]``).

    Raises
    ------
    UserError
        Templates of the wrong shape, non-finite or negative.
    """
    templates = np.asarray(basis.templates, dtype=np.float32)
    _check_templates(templates, basis.grid, f"basis {basis.version!r}")
    basis.meta["content_hash"] = content_hash(templates, basis.grid)
    basis.meta.setdefault("created_utc", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    basis.meta["k"] = basis.k
    metadata = basis.meta | {"format": BASIS_FORMAT, "version": basis.version, "grid": basis.grid.to_dict()}
    column = pa.FixedSizeListArray.from_arrays(pa.array(templates.ravel(), pa.float32()), templates.shape[1])
    table = pa.table({"template": column.cast(pa.list_(pa.float32()))})
    table = table.replace_schema_metadata({BASIS_METADATA_KEY: orjson.dumps(metadata, option=orjson.OPT_SERIALIZE_NUMPY)})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return basis.meta["content_hash"]


def load_basis(path: str | Path) -> Basis:
    """Read a basis file and verify its content hash.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Basis
        ``templates`` float32, shape (k, grid.n_pixels); ``meta`` as stored.

    Raises
    ------
    UserError
        Missing or unreadable file, not a basis file, or content hash mismatch.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"basis file {path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(f"basis file {path}: cannot read as Parquet ({error})") from None
    raw = (table.schema.metadata or {}).get(BASIS_METADATA_KEY)
    if raw is None or "template" not in table.column_names:
        raise UserError(f"basis file {path}: no {BASIS_METADATA_KEY.decode()} metadata or template column; not a zstream basis file")
    meta = orjson.loads(raw)
    grid = LogGrid.from_dict(meta.pop("grid"))
    version = meta.pop("version")
    meta.pop("format", None)
    column = table.column("template").combine_chunks()
    lengths = set(pc.list_value_length(column).to_pylist())
    if lengths != {grid.n_pixels}:
        raise UserError(f"basis file {path}: template lengths {sorted(lengths)} differ from the grid's {grid.n_pixels} pixels")
    templates = column.flatten().to_numpy().astype(np.float32).reshape(len(column), grid.n_pixels)
    _check_templates(templates, grid, f"basis file {path}")
    computed = content_hash(templates, grid)
    if computed != meta.get("content_hash"):
        raise UserError(
            f"basis file {path}: content hash mismatch (stored {meta.get('content_hash')}, computed {computed}); "
            "the file is corrupt or was edited — re-export it with save_basis"
        )
    return Basis(templates=templates, grid=grid, version=version, meta=meta)


def _check_templates(templates: np.ndarray, grid: LogGrid, name: str) -> None:
    if templates.ndim != 2 or templates.shape[0] == 0 or templates.shape[1] != grid.n_pixels:
        raise UserError(f"{name}: templates have shape {templates.shape}, expected (k >= 1, {grid.n_pixels}) for the grid")
    if not np.all(np.isfinite(templates)) or np.any(templates < 0):
        raise UserError(f"{name}: templates must be finite and non-negative")
