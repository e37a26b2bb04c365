"""The suite runs what is shipped: the modules of mypyc-modules.txt compiled, and
never a compiled module older than its source (an edit not rebuilt yet)."""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from tests import REPO

LISTED = REPO / "mypyc-modules.txt"
REBUILD = "run `make compile` (or any make target: they rebuild it)"


def listed_modules() -> list[Path]:
    lines = LISTED.read_text().splitlines()
    return [REPO / line for line in lines if line and not line.startswith("#")]


def module_name(source: Path) -> str:
    return ".".join(source.relative_to(REPO / "src").with_suffix("").parts)


def stale_or_missing() -> list[str]:
    """Why each listed module would not run compiled from its current source."""
    problems = []
    for source in listed_modules():
        name = module_name(source)
        built = source.with_name(source.stem + EXTENSION_SUFFIXES[0])
        # (a module the group's library loads names its file wrongly; its suffix holds)
        loaded = Path(importlib.import_module(name).__file__ or "")
        if not built.exists():
            problems.append(f"{name} is not compiled: {built.relative_to(REPO)} is missing")
        elif loaded.suffix != ".so":
            problems.append(f"{name} is not compiled (imported from {loaded})")
        elif built.stat().st_mtime < source.stat().st_mtime:
            problems.append(f"{name}: {built.name} is older than {source.relative_to(REPO)}")
    return problems
