"""Rewrite the settings table in docs/configuration.md from ``zstream.service.config``.

The table between the two markers is generated, never edited by hand; the test
``tests/deploy/test_deploy_config_reference.py`` fails when it is stale.

    python deploy/update_config_reference.py          # refresh the file
    python deploy/update_config_reference.py --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zstream.service.config import reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED: settings table (python deploy/update_config_reference.py) -->\n"
END = "<!-- END GENERATED -->\n"


def split_document(text: str) -> tuple[str, str, str]:
    """Split ``text`` into (before, generated table, after) around the markers.

    Raises
    ------
    ValueError
        When either marker is missing or they are out of order.
    """
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"{DOC}: markers {BEGIN.strip()!r} … {END.strip()!r} missing or out of order; restore them")
    return text[: start + len(BEGIN)], text[start + len(BEGIN) : stop], text[stop:]


def main(argv: list[str] | None = None) -> int:
    """Refresh (or with ``--check`` verify) the generated table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the table is current")
    args = parser.parse_args(argv)
    before, table, after = split_document(DOC.read_text(encoding="utf-8"))
    expected = reference_markdown()
    if table == expected:
        return 0
    if args.check:
        print(f"{DOC} is stale; run: python deploy/update_config_reference.py", file=sys.stderr)
        return 1
    DOC.write_text(before + expected + after, encoding="utf-8")
    print(f"updated {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
