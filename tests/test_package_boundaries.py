"""The package boundaries the design promises: ``trust_worker`` and ``hub_broker`` never import each other,
and ``omop`` imports neither, so a hospital can install and run its side without hub code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "omop": {"trust_worker", "hub_broker", "omopfed"},
    "trust_worker": {"hub_broker", "omopfed"},
    "hub_broker": {"trust_worker", "omopfed"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_their_boundary(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no source files found for {package}"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package]) for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# Imports every module of omop, then prints which modules of the packages named in argv got loaded.
_LOAD_OMOP = """
import importlib, json, pkgutil, sys
import omop
for info in pkgutil.walk_packages(omop.__path__, "omop."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])))
"""


def test_omop_loads_without_the_other_packages() -> None:
    """The contract stands alone at run time too: importing every module of ``omop`` in a fresh interpreter
    loads no module of ``trust_worker``, ``hub_broker`` or ``omopfed``. This also catches an import the
    parse above cannot see, such as ``importlib.import_module("trust_worker.x")``."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_OMOP, *sorted(FORBIDDEN["omop"])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
