"""External tools: found on PATH or a clear failure, never a silent skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

INSTALL_HINT = (
    "scripts/install-system-deps.sh installs the system packages, `make tools` the "
    "validation tools (tools/requirements.txt, tools/*/node_modules; on PATH via make)"
)


class MissingTool(RuntimeError):
    """A tool the caller needs is not installed: CI must not pass by testing nothing."""


class CommandFailed(AssertionError):
    """A command exited non-zero; the message carries the end of its output."""


def require(tool: str, hint: str = INSTALL_HINT) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(f"{tool} is not installed; {hint}")
    return path


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 300,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion, output captured; with ``check`` a non-zero exit
    raises CommandFailed with the tail of both streams."""
    proc = subprocess.run(
        [require(args[0]), *args[1:]],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n"
            f"--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc
