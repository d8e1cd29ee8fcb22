"""Every deployment file parses: YAML, JSON, TOML and the Python helpers (one case per kind of file)."""

from __future__ import annotations

import ast
import json
import tomllib

import pytest
from deploy_checks import DEPLOY, yaml_documents

FILES = {
    "yaml": sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]),
    "json": sorted(DEPLOY.rglob("*.json")),
    "toml": sorted(DEPLOY.rglob("*.toml")),
    "python": sorted(DEPLOY.rglob("*.py")),
}


def _parses(kind: str, path) -> bool:
    """Whether one deployment file is well-formed for its kind (YAML documents and JSON must be mappings)."""
    text = path.read_text(encoding="utf-8")
    if kind == "yaml":
        documents = yaml_documents(path)
        return bool(documents) and all(isinstance(document, dict) for document in documents)
    if kind == "json":
        return isinstance(json.loads(text), dict)
    if kind == "toml":
        return bool(tomllib.loads(text))
    ast.parse(text, filename=str(path))
    return True


def test_the_deployment_tree_has_every_part():
    assert len(FILES["yaml"]) >= 10 and FILES["json"] and FILES["toml"] and FILES["python"]
    for part in ("compose/compose.yaml", "grafana/zstream.json", "prometheus/alerts.yml", "k8s/deployment.yaml"):
        assert (DEPLOY / part).is_file(), part


@pytest.mark.parametrize("kind", FILES)
def test_every_deployment_file_parses(kind):
    broken = [str(path.relative_to(DEPLOY)) for path in FILES[kind] if not _parses(kind, path)]
    assert not broken, f"{kind} files that do not parse as expected: {broken}"
