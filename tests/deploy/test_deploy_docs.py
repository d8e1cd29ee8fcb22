"""Commands in the operator guide exist with the flags it shows; the kustomization builds."""

from __future__ import annotations

import re
import shutil
import subprocess

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


def test_every_zstream_command_in_the_guide_parses():
    unknown = sorted({argv[0] for argv in ZSTREAM_COMMANDS} - set(registered_commands()))
    assert not unknown, f"docs/operations.md uses commands zstream does not have: {unknown}"
    rejected = [f"'zstream {' '.join(argv)}': {why}" for argv in ZSTREAM_COMMANDS if (why := cli_rejection(argv))]
    assert not rejected, "docs/operations.md: " + "; ".join(rejected)


def test_the_kustomization_builds():
    assert shutil.which("kubectl"), "this test needs kubectl on PATH (it runs 'kubectl kustomize deploy/k8s')"
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True)
    kinds = sorted(obj["kind"] for obj in yaml_documents(built.stdout))
    listed = sorted(obj["kind"] for name in yaml_documents(K8S / "kustomization.yaml")[0]["resources"]
                    for obj in yaml_documents(K8S / name))
    assert kinds == listed

