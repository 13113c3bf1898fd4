"""The example files ship inside the package; the repository's ``examples/`` is an exact copy for users.

``omopfed/examples/`` is the source: the demo reads it with ``importlib.resources`` (so it works from a wheel
or the Docker image, which have no ``examples/``), and ``[tool.setuptools.package-data]`` puts it in the
wheel. The README and the docs point users of a checkout at ``examples/``, so that copy must never drift.
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "omopfed" / "examples"
COPY = REPO / "examples"


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


def test_examples_copy_equals_the_packaged_source() -> None:
    assert _names(PACKAGED), "omopfed/examples/ is empty"
    assert _names(COPY) == _names(PACKAGED), (
        "examples/ must hold exactly the files of omopfed/examples/ (the source): "
        "cp omopfed/examples/* examples/"
    )
    differ = sorted(n for n in _names(PACKAGED) if (COPY / n).read_bytes() != (PACKAGED / n).read_bytes())
    assert differ == [], f"examples/ differs from omopfed/examples/ (the source) in {differ}"


def test_every_packaged_example_is_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["omopfed"]
    missing = sorted(
        n for n in _names(PACKAGED) if not any(fnmatch.fnmatch(f"examples/{n}", pat) for pat in patterns)
    )
    assert missing == [], f"not in [tool.setuptools.package-data] omopfed, so not in the wheel: {missing}"


def test_the_demo_reads_the_packaged_files() -> None:
    from omopfed import demo

    resource = files("omopfed") / "examples" / "flower-six-features.sql"
    assert demo.FLOWER_SQL == resource.read_text(encoding="utf-8")
    assert "hba1c" in demo.FLOWER_SQL
