"""Readers shared by the deployment tests: repository files, alert rules, dashboard queries, settings.

Nothing here needs a Docker engine or a cluster: the deployment files are parsed
as data and compared with what ``zstream.service`` defines.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from zstream.cli import build_parser
from zstream.service.config import ServiceConfig, load_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS_FILE = DEPLOY / "prometheus" / "tests" / "alerts_test.yml"
SCRAPE_FILE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "zstream.json"
K8S = DEPLOY / "k8s"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

def yaml_documents(source: Path | str) -> list:
    """Every YAML document of a file (a Path) or of YAML text (a str); empty documents are dropped."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    return [document for document in yaml.safe_load_all(text) if document is not None]


def k8s_objects() -> Iterator[dict]:
    """Every Kubernetes object under deploy/k8s (kustomization.yaml excluded)."""
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from yaml_documents(path)


def k8s_object(kind: str, name: str | None = None) -> dict:
    """The one object of ``kind`` (and ``name``) under deploy/k8s."""
    found = [obj for obj in k8s_objects() if obj["kind"] == kind and name in (None, obj["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def alert_rules() -> list[dict]:
    """Every alerting rule of deploy/prometheus/alerts.yml."""
    return [rule for group in yaml_documents(ALERTS_FILE)[0]["groups"] for rule in group["rules"]]


def dashboard_expressions(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and annotation query of a Grafana dashboard."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def command_lines(script: str, program: str, variables: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Argument lists of the lines in a shell script (or shell code in docs) that run ``program``.

    Shell variables (``$NAME``, ``${NAME}``, compose's ``$$NAME``) take their value from
    ``variables`` or from simple ``NAME=value`` assignments earlier in the script, else
    become the word ``VALUE_NAME``. Commands are cut at ``&&``, ``||``, ``;``, ``|`` and ``)``.
    """
    known = dict(variables or {})

    def expand(text: str) -> str:
        return re.sub(r"\$\$?\{?(\w+)\}?", lambda match: known.get(match[1], f"VALUE_{match[1]}"), text)

    for raw_line in script.replace("\\\n", " ").splitlines():
        line = expand(raw_line)
        assignment = re.fullmatch(r"\s*(\w+)=(\S+)\s*", line)
        if assignment:
            known[assignment[1]] = assignment[2].strip('"')
            continue
        for segment in re.split(r"&&|\|\||;|\||\)", line):
            words = shlex.split(segment, comments=True)
            if words and words[0] == program:
                yield words[1:]


def compose_environment(service: dict) -> dict[str, str]:
    """A compose service's environment with ``${VAR:-default}`` resolved to the default."""
    return {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)) for name, value in service.get("environment", {}).items()
    }


def load_settings(toml_text: str, tmp_path: Path) -> ServiceConfig:
    """Load ``toml_text`` through the service's own config reader (no environment)."""
    path = tmp_path / "zstream.toml"
    path.write_text(toml_text, encoding="utf-8")
    return load_config(env={}, config_path=path)


@functools.cache
def zstream_parser() -> argparse.ArgumentParser:
    """The ``zstream`` argument parser with every registered sub-command (built once)."""
    return build_parser()


def registered_commands() -> set[str]:
    """Sub-commands the ``zstream`` parser knows."""
    # argparse exposes sub-parsers only through its actions list.
    return set(next(a for a in zstream_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def cli_rejection(argv: list[str]) -> str | None:
    """Why the ``zstream`` command line ``argv`` does not parse, or None when it does."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            zstream_parser().parse_args(argv)
    except SystemExit:
        return errors.getvalue().strip().splitlines()[-1]
    return None


@dataclass
class Stage:
    """One build stage of the Dockerfile: its base, name and instructions (keyword, arguments)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        """Arguments of every ``keyword`` instruction of the stage, in order."""
        return [arguments for word, arguments in self.instructions if word == keyword]


def dockerfile() -> tuple[list[tuple[str, str]], list[Stage]]:
    """The Dockerfile as (instructions before the first FROM, stages), continuation lines joined."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            base, _, name = arguments.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            (stages[-1].instructions if stages else preamble).append((keyword, arguments))
    return preamble, stages


def image_user_id() -> int:
    """Numeric user id the final image stage runs as."""
    (user,) = dockerfile()[1][-1].arguments("USER")
    return int(user.split(":")[0])
