"""Where things are, the peers' virtualenv, and the machine line."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS_DIR = BENCH / "peers"
REQUIREMENTS = BENCH / "peers-requirements.txt"
PEERS_VENV = Path(os.environ.get("BENCH_PEERS_VENV", BENCH / ".peers-venv"))
INSTALL_TIMEOUT = 900


def peers_bin(name: str) -> Path:
    return PEERS_VENV / "bin" / name


def ensure_peers_venv(log: Any = print) -> bool:
    """Create or update bench/.peers-venv from peers-requirements.txt.

    Returns True when it had to install (the marker holds the requirements'
    digest, so an unchanged file costs nothing)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = PEERS_VENV / ".installed"
    if marker.exists() and marker.read_text().strip() == digest:
        return False
    log(f"installing the peers into {PEERS_VENV} (once; about a minute)")
    if not peers_bin("python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(peers_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-r", str(REQUIREMENTS)], check=True, timeout=INSTALL_TIMEOUT)
    marker.write_text(digest + "\n")
    return True


def require_tools() -> None:
    """Fail at once, with the fix, when a system tool is missing."""
    missing = [tool for tool in ("wrk", "redis-server") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"bench: missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}"
            " (scripts/install-system-deps.sh installs both)"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def busy_share(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat). Sampled while the
    bench itself idles, it is the other work on this shared machine."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round((busy1 - busy0) / max(total1 - total0, 1), 3)


def source() -> dict[str, Any]:
    """The code under test: HEAD, whether src/ differs from it, and a digest of
    src/pingpong (compared at the end: the hot path may be edited meanwhile)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "pingpong").rglob("*")):
        if path.suffix in (".py", ".lua"):
            digest.update(path.relative_to(REPO).as_posix().encode() + path.read_bytes())
    return {
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "src_modified": bool(_git("status", "--porcelain", "--", "src")),
        "src_digest": digest.hexdigest()[:16],
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine() -> dict[str, Any]:
    """The machine line: CPU, cores, kernel, Python, and the tools' versions."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "wrk": tool_version(["wrk", "--version"]).split(" [")[0],
        "redis_server": tool_version(["redis-server", "--version"]).split(" sha=")[0],
        "load_average_start": load_average(),
        "other_cpu_busy_start": busy_share(),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}, {info['wrk']}, {info['redis_server']}"
    )
