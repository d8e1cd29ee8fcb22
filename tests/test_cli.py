"""The command-line entry point parses, lists its commands and reports bad input in one line."""

import subprocess
import sys

from zstream.cli import build_parser, main


EXPECTED_COMMANDS = {"bench", "simulate", "evaluate", "calibrate", "select-rank", "validate", "serve", "replay", "basis", "anchors",
                     "demo", "fit", "scan"}


def test_help_lists_registered_commands():
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    assert set(subparsers.choices) == EXPECTED_COMMANDS
    listed = {choice.dest for choice in subparsers._choices_actions}
    assert listed == EXPECTED_COMMANDS, "every command has a help line in `zstream --help`"
    help_text = parser.format_help()
    assert all(f"    {name}" in help_text for name in EXPECTED_COMMANDS)


def test_each_command_has_its_own_module_under_cli():
    """One module per command under zstream.cli, each registering exactly its own command."""
    import argparse
    import importlib

    from zstream.cli import COMMANDS

    for module_name in COMMANDS:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers(dest="command")
        importlib.import_module(module_name).register(subparsers)
        assert module_name.startswith("zstream.cli.") and len(subparsers.choices) == 1, module_name


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: zstream" in capsys.readouterr().out


def test_console_script_runs_as_module():
    completed = subprocess.run(
        [sys.executable, "-m", "zstream.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith("zstream ")


def test_user_errors_become_one_line_and_bugs_do_not():
    from kafka.errors import KafkaTimeoutError

    from zstream.cli import describe_user_error

    assert "cannot reach Kafka" in describe_user_error(KafkaTimeoutError("no metadata"))
    assert describe_user_error(FileNotFoundError("spectra.parquet")) == "spectra.parquet"
    assert describe_user_error(ZeroDivisionError()) is None


def test_missing_input_file_is_a_one_line_error(tmp_path, capsys):
    code = main(["validate", str(tmp_path / "missing.parquet")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("zstream validate: error:") and "missing.parquet" in last_line
