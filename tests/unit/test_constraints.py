"""Every runtime and dev dependency pyproject.toml declares has a pin in
constraints.txt that satisfies it, so that `make` installs the same versions
everywhere (a dependency added without `make lock` fails here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def pins() -> dict[str, Version]:
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pinned[normalized(name)] = Version(version)
    return pinned


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in [*project["dependencies"], *extras.get("dev", [])]]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()
    unpinned = [str(r) for r in declared() if normalized(r.name) not in pinned]
    assert unpinned == [], "run make lock"
    outside = [
        f"{r} (pinned {pinned[normalized(r.name)]})"
        for r in declared()
        if not r.specifier.contains(pinned[normalized(r.name)], prereleases=True)
    ]
    assert outside == []


def test_the_rule_reads_pyproject() -> None:
    names = {normalized(r.name) for r in declared()}
    assert {"granian", "redis", "pydantic", "import-linter", "pytest"} <= names
