"""The package layout shows the architecture: stage libraries, the service, its tools, one module per command."""

from __future__ import annotations

import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import zstream

PACKAGES = sorted(module.name for module in pkgutil.walk_packages(zstream.__path__, "zstream.") if module.ispkg)
TOP_LEVEL = {path.name for path in Path(zstream.__file__).parent.iterdir() if path.suffix == ".py"}


def test_the_top_level_holds_only_the_shared_basics():
    assert TOP_LEVEL == {"__init__.py", "device.py", "errors.py"}
    assert {name.split(".")[1] for name in PACKAGES} == {
        "bench", "cli", "demo", "evaluate", "grid", "io", "nmf", "redshift", "service", "sim", "testing",
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_is_hidden_by_a_name_its_package_exports(package):
    """``zstream.nmf.fit`` must be one thing: a submodule shadowed by a function cannot be imported by attribute."""
    imported = importlib.import_module(package)
    hidden = []
    for sub in pkgutil.iter_modules(imported.__path__):
        if sub.name == "__main__":  # running it is the command itself
            continue
        importlib.import_module(f"{package}.{sub.name}")
        if not isinstance(getattr(imported, sub.name), types.ModuleType):
            hidden.append(sub.name)
    assert not hidden, f"{package}: {hidden} are both a submodule and another object"
