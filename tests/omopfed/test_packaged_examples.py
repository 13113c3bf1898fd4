"""The example files ship inside the package, the only copy of them.

The demo reads ``omopfed/examples/`` with ``importlib.resources`` (so it works from a wheel or the Docker
image, which have no repository tree), ``[tool.setuptools.package-data]`` puts it in the wheel, and the
README's commands use the same files from a checkout.
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "omopfed" / "examples"


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


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
