"""The Arrow schemas, the JSON Schemas and the reason table stay in step with each other and the docs."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from zstream.io import RESULT_SCHEMA, SPECTRUM_SCHEMA, Reason, json_schema, json_validator
from zstream.io.meta import META_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _json_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type):
        return "array"
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    return "number"


def test_root_schemas_folder_is_the_packaged_one():
    """One copy of the schemas: ``schemas/`` at the root links to the package data that ships."""
    root = ROOT / "schemas"
    assert root.is_symlink() and root.resolve() == (ROOT / "src" / "zstream" / "schemas").resolve()
    for name in ("spectrum", "result"):
        assert json.loads((root / f"{name}.schema.json").read_text()) == json_schema(name)


@pytest.mark.parametrize(("name", "arrow_schema"), [("spectrum", SPECTRUM_SCHEMA), ("result", RESULT_SCHEMA)])
def test_arrow_and_json_schema_describe_the_same_fields(name, arrow_schema):
    properties = json_schema(name)["properties"]
    optional = {field.name for field in META_FIELDS} if name == "result" else set()  # added after the scan
    assert set(properties) - {"schema_version"} - optional == set(arrow_schema.names) - {"schema_version"}
    for field in arrow_schema:
        declared = properties[field.name].get("type")
        if declared is None:  # schema_version is an enum
            continue
        types = {declared} if isinstance(declared, str) else set(declared)
        assert _json_type(field.type) in types, field.name
        if pa.types.is_list(field.type):
            item_types = properties[field.name]["items"]["type"]
            item_types = {item_types} if isinstance(item_types, str) else set(item_types)
            assert _json_type(field.type.value_type) in item_types, field.name


def test_result_json_requires_every_arrow_column():
    assert set(json_schema("result")["required"]) == set(RESULT_SCHEMA.names)


@pytest.mark.parametrize("name", ["spectrum", "result"])
def test_validator_is_compiled_once(name):
    assert json_validator(name) is json_validator(name)


def test_every_reason_has_a_description_and_a_row_in_the_docs():
    formats = (ROOT / "docs" / "formats.md").read_text()
    for reason in Reason:
        assert f"| `{reason.value}` | {reason.description} |" in formats, reason
