"""The Dockerfile builds a small non-root image running `zstream serve`, checked without Docker."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys

from deploy_checks import DOCKERIGNORE, REPO, dockerfile, image_user_id

from zstream.service.config import ServiceConfig, env_of
from zstream.service.health import HealthServer
from zstream.service.metrics import ServiceMetrics

PREAMBLE, STAGES = dockerfile()
RUNTIME = STAGES[-1]


def ignored_by_dockerignore(path: str) -> bool:
    """Whether the build context leaves ``path`` out (last matching .dockerignore rule wins)."""
    ignored = False
    for rule in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.removeprefix("**/")):
            ignored = not negated
    return ignored


def test_the_runtime_stage_copies_only_the_built_environment():
    assert len(STAGES) >= 3
    assert RUNTIME.base == "base" and STAGES[0].base.startswith("python:") and STAGES[0].base.endswith("-slim")
    assert PREAMBLE[0] == ("ARG", "PYTHON_VERSION=3.11")
    assert all(arguments.startswith("--from=") for arguments in RUNTIME.arguments("COPY"))


def test_torch_build_is_chosen_by_the_variant_argument():
    assert ("ARG", "VARIANT=cpu") in PREAMBLE
    stages = {stage.name: stage for stage in STAGES}
    assert {"torch-cpu", "torch-cuda"} <= stages.keys()
    assert stages["builder"].base == "torch-${VARIANT}"
    (cpu_install,) = stages["torch-cpu"].arguments("RUN")
    (cuda_install,) = stages["torch-cuda"].arguments("RUN")
    assert "--index-url" in cpu_install and "--index-url" not in cuda_install
    # Both pin torch through the repository's constraints file.
    assert "-c constraints.txt" in cpu_install and "-c constraints.txt" in cuda_install
    assert [stage.name for stage in STAGES if any("--index-url" in run for run in stage.arguments("RUN"))] == ["torch-cpu"]


def test_the_container_runs_zstream_serve_as_a_non_root_user():
    assert json.loads(RUNTIME.arguments("ENTRYPOINT")[-1]) == ["zstream", "serve"]
    assert image_user_id() >= 1000
    assert "--uid 10001" in " ".join(RUNTIME.arguments("RUN"))


def test_the_image_sets_no_zstream_setting_so_a_config_file_is_never_overridden():
    environment = " ".join(arguments for stage in STAGES for arguments in stage.arguments("ENV"))
    assert "ZSTREAM_" not in environment


def test_healthcheck_probes_liveness_on_the_metrics_port():
    port = ServiceConfig().metrics_port
    (healthcheck,) = RUNTIME.arguments("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert env_of("metrics_port") in healthcheck and repr(str(port)) in healthcheck
    assert RUNTIME.arguments("EXPOSE") == [str(port)]


def test_the_healthcheck_command_follows_the_service_liveness_not_its_readiness():
    (healthcheck,) = RUNTIME.arguments("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD"):])
    assert command[0] == "python"
    liveness = {"alive": False}
    server = HealthServer(ServiceMetrics(), lambda: (False, "not ready"), lambda: (liveness["alive"], "test"),
                          "127.0.0.1", 0).start()
    try:
        env = {**os.environ, env_of("metrics_port"): str(server.port)}

        def probe() -> int:
            return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode

        assert probe() != 0
        liveness["alive"] = True
        assert probe() == 0
    finally:
        server.stop()


def test_every_copied_source_exists_and_is_in_the_build_context():
    sources = []
    for stage in STAGES:
        for arguments in stage.arguments("COPY"):
            words = [word for word in arguments.split() if not word.startswith("--")]
            if not arguments.startswith("--from="):
                sources += words[:-1]
    assert {"pyproject.toml", "constraints.txt", "src"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
        assert not ignored_by_dockerignore(source), f".dockerignore leaves {source} out of the build context"


def test_dockerignore_keeps_local_state_out_of_the_context():
    for path in (".venv", ".git", "tests", "src/zstream/__pycache__", "demo-output"):
        assert ignored_by_dockerignore(path), path


def test_the_package_data_the_build_needs_is_copied():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', pyproject, re.MULTILINE)
    copied = " ".join(arguments for stage in STAGES for arguments in stage.arguments("COPY"))
    assert readme is None or readme[1] in copied.split()
