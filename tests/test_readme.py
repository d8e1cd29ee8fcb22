"""The README describes the system as it is: its reason-code table and command table match the code."""

import re
from pathlib import Path

from zstream.cli import build_parser
from zstream.io import Reason

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_reason_code_table_matches_the_enum():
    rows = dict(re.findall(r"^\| `([a-z_0-9]+)` \| (.+) \|$", README, flags=re.MULTILINE))
    assert rows == {reason.value: reason.description for reason in Reason}


def test_every_command_in_the_readme_exists():
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    mentioned = set(re.findall(r"^\| `zstream ([a-z-]+)", README, flags=re.MULTILINE))
    assert mentioned, "README command table not found"
    assert mentioned <= set(subparsers.choices)


def test_every_benchmark_in_the_readme_exists():
    parser = build_parser()
    bench = next(action for action in parser._actions if action.dest == "command").choices["bench"]
    benchmarks = next(action for action in bench._actions if action.dest == "benchmark").choices
    listed = re.search(r"`zstream bench ([a-z|\\]+)`", README).group(1).split("\\|")
    assert set(listed) <= set(benchmarks)


def test_quick_start_commands_use_the_constraints_file():
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    assert len(commands) >= 2
    install_and_demo, tests = commands[:2]
    assert "-c constraints.txt" in install_and_demo and install_and_demo.endswith("zstream demo")
    assert tests.endswith("python -m pytest")


def test_ci_checks_the_import_contracts_then_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    tests = re.findall(r"```bash\n(.+?)\n```", README)[1]
    assert ci[-1] == tests
    assert ci.index(".venv/bin/lint-imports") < len(ci) - 1


def test_the_demo_command_installs_the_demo_extra():
    install_and_demo = re.findall(r"```bash\n(.+?)\n```", README)[0]
    assert '-e ".[demo]"' in install_and_demo


def test_the_development_section_lists_every_package():
    package = Path(__file__).resolve().parents[1] / "src" / "zstream"
    layout = README.split("### Layout", 1)[1].split("###", 1)[0]
    packages = {path.parent.name for path in package.glob("*/__init__.py")}
    assert packages and all(f"{name}/" in layout for name in packages), sorted(packages)
