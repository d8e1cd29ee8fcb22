"""docs/configuration.md carries exactly the settings table the code generates."""

from __future__ import annotations

import importlib.util

import pytest
from deploy_checks import DEPLOY

from zstream.service.config import reference_markdown


@pytest.fixture(scope="module")
def updater():
    spec = importlib.util.spec_from_file_location("update_config_reference", DEPLOY / "update_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_equals_the_generated_one(updater):
    _, table, _ = updater.split_document(updater.DOC.read_text(encoding="utf-8"))
    assert table == reference_markdown(), "docs/configuration.md is stale: run python deploy/update_config_reference.py"


def test_the_updater_replaces_only_the_generated_block(updater, tmp_path, monkeypatch):
    stale = f"intro\n{updater.BEGIN}| old | table |\n{updater.END}outro\n"
    monkeypatch.setattr(updater, "DOC", tmp_path / "configuration.md")
    updater.DOC.write_text(stale, encoding="utf-8")
    assert updater.main(["--check"]) == 1
    assert updater.main([]) == 0
    assert updater.DOC.read_text(encoding="utf-8") == f"intro\n{updater.BEGIN}{reference_markdown()}{updater.END}outro\n"
    assert updater.main(["--check"]) == 0


def test_the_updater_refuses_a_document_without_markers(updater):
    with pytest.raises(ValueError, match="markers"):
        updater.split_document("no markers here\n")
