"""Commands in the operator guide exist with the flags it shows; the kustomization builds."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from deploy_checks import K8S, REPO, cli_rejection, command_lines, registered_commands, yaml_documents

GUIDE = REPO / "docs" / "operations.md"
SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def guide_commands(program: str) -> list[list[str]]:
    """Argument lists of every ``program`` command in the guide's shell blocks and inline code."""
    text = GUIDE.read_text(encoding="utf-8")
    scripts = SHELL_BLOCK.findall(text) + re.findall(rf"`({program} [^`]+)`", text)
    return [argv for script in scripts for argv in command_lines(script, program)]


ZSTREAM_COMMANDS = guide_commands("zstream")


def test_the_guide_covers_basis_rollback_and_replay():
    used = {tuple(argv[:2]) for argv in ZSTREAM_COMMANDS}
    assert {("basis", "list"), ("basis", "show"), ("basis", "rollback")} <= used
    assert any(argv[0] == "replay" for argv in ZSTREAM_COMMANDS)


@pytest.mark.parametrize("argv", ZSTREAM_COMMANDS, ids=[" ".join(argv[:2]) for argv in ZSTREAM_COMMANDS])
def test_every_zstream_command_in_the_guide_parses(argv):
    if argv[0] not in registered_commands():
        pytest.skip(f"'zstream {argv[0]}' is not registered in zstream.cli yet")
    assert cli_rejection(argv) is None, f"docs/operations.md: 'zstream {' '.join(argv)}': {cli_rejection(argv)}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_kustomization_builds():
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True)
    kinds = sorted(obj["kind"] for obj in yaml_documents(built.stdout))
    listed = sorted(obj["kind"] for name in yaml_documents(K8S / "kustomization.yaml")[0]["resources"]
                    for obj in yaml_documents(K8S / name))
    assert kinds == listed

