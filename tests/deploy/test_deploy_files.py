"""Every deployment file parses: YAML, JSON, TOML and the Python helpers."""

from __future__ import annotations

import ast
import json
import tomllib

import pytest
from deploy_checks import DEPLOY, yaml_documents

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
JSON_FILES = sorted(DEPLOY.rglob("*.json"))
TOML_FILES = sorted(DEPLOY.rglob("*.toml"))
PYTHON_FILES = sorted(DEPLOY.rglob("*.py"))


def relative(paths):
    return [str(path.relative_to(DEPLOY)) for path in paths]


def test_the_deployment_tree_has_every_part():
    assert len(YAML_FILES) >= 10 and JSON_FILES and TOML_FILES
    for part in ("compose/compose.yaml", "grafana/zstream.json", "prometheus/alerts.yml", "k8s/deployment.yaml"):
        assert (DEPLOY / part).is_file(), part


@pytest.mark.parametrize("path", YAML_FILES, ids=relative(YAML_FILES))
def test_yaml_parses(path):
    documents = yaml_documents(path)
    assert documents and all(isinstance(document, dict) for document in documents)


@pytest.mark.parametrize("path", JSON_FILES, ids=relative(JSON_FILES))
def test_json_parses(path):
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


@pytest.mark.parametrize("path", TOML_FILES, ids=relative(TOML_FILES))
def test_toml_parses(path):
    assert tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", PYTHON_FILES, ids=relative(PYTHON_FILES))
def test_python_helpers_compile(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
