"""Arrow schemas of the spectrum and result records, and their JSON Schema twins.

The JSON Schemas ship as package data (``zstream/schemas/*.json``), their only
copy: ``schemas/`` at the repository root is a symbolic link to that folder, so
the documented schemas cannot drift from the shipped ones. Arrow and JSON
describe the same fields; a test keeps the two in step.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import jsonschema
import pyarrow as pa

SCHEMA_VERSION = "1"
"""Current record schema version; records may carry it as ``schema_version``."""

SHARED_WAVELENGTH_KEY = b"zstream:wavelength"
"""Parquet/Arrow file-metadata key holding one wavelength grid (JSON list, Å) shared by all rows."""

REQUIRED_SPECTRUM_FIELDS = ("spectrum_id", "wavelength", "flux", "ivar")

SPECTRUM_SCHEMA = pa.schema(
    [
        pa.field("spectrum_id", pa.string(), nullable=False),
        pa.field("wavelength", pa.list_(pa.float64()), metadata={"unit": "Angstrom"}),
        pa.field("flux", pa.list_(pa.float32()), nullable=False),
        pa.field("ivar", pa.list_(pa.float64()), nullable=False, metadata={"note": "0 = bad pixel"}),
        pa.field("mask", pa.list_(pa.bool_()), metadata={"optional": "true", "note": "true = bad pixel"}),
        pa.field("z", pa.float64(), metadata={"optional": "true"}),
        pa.field("schema_version", pa.string(), metadata={"optional": "true"}),
    ]
)
"""Arrow form of a spectrum record. ``wavelength`` may be omitted when the file
metadata holds a shared grid (``SHARED_WAVELENGTH_KEY``); fields marked optional
may be absent; any other column is passed through untouched."""

RESULT_SCHEMA = pa.schema(
    [
        pa.field("spectrum_id", pa.string(), nullable=False),
        pa.field("z", pa.float64()),
        pa.field("z_err", pa.float64()),
        pa.field("chi2_min", pa.float64()),
        pa.field("delta_chi2", pa.float64()),
        pa.field("robustness", pa.float64()),
        pa.field("is_source", pa.bool_(), nullable=False),
        pa.field("is_blend", pa.bool_(), nullable=False),
        pa.field("blend_score", pa.float64()),
        pa.field("z_blend", pa.float64()),
        pa.field("coefficients", pa.list_(pa.float32()), nullable=False),
        pa.field("basis_version", pa.string(), nullable=False),
        pa.field("warnings", pa.int64(), nullable=False),
        pa.field("n_pixels_used", pa.int64(), nullable=False),
        pa.field("spectype", pa.string()),
        pa.field("z_alt", pa.float64()),
        pa.field("spectype_alt", pa.string()),
        pa.field("chi2_alt", pa.float64()),
        pa.field("spike_score", pa.float64()),
        pa.field("edge_score", pa.float64()),
        pa.field("p_source", pa.float64()),
        pa.field("p_z_ok", pa.float64()),
        pa.field("p_blend", pa.float64()),
    ]
)
"""Arrow form of a redshift result, one row per accepted spectrum."""


@cache
def json_schema(name: str) -> dict:
    """Return the JSON Schema ``name`` (``"spectrum"`` or ``"result"``) shipped with the package."""
    text = files("zstream").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def json_validator(name: str) -> jsonschema.protocols.Validator:
    """Compiled validator for :func:`json_schema` ``(name)``, built once per process."""
    schema = json_schema(name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)
