"""The command-line entry point parses, lists its commands and reports bad input in one line."""

import subprocess
import sys

from zstream.cli import build_parser, main


def test_help_lists_registered_commands(capsys):
    parser = build_parser()
    help_text = parser.format_help()
    assert "bench" in help_text


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: zstream" in capsys.readouterr().out


def test_console_script_runs_as_module():
    completed = subprocess.run(
        [sys.executable, "-m", "zstream.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith("zstream ")
