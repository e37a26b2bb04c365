"""Running Debian's wrk, pinned to the load CPU, and reading its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from bench.env import BENCH
from bench.servers import LOAD_CPU, pinned

CONNECTIONS = 32
PACE_SCRIPT = BENCH / "pace.lua"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)


@dataclass
class WrkResult:
    """One wrk run: every response counts in ``rps``; ``non2xx`` are the 429s."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(output: str) -> WrkResult:
    """Read wrk's ``--latency`` report."""
    found = _DURATION.search(output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None or rps is None:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    percentiles = {m[1]: float(m[2]) * _UNITS_MS[m[3]] for m in _PERCENTILE.finditer(output)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return WrkResult(
        requests=int(found[1]),
        seconds=float(found[2]) * _UNITS_MS[found[3]] / 1000,
        rps=float(rps[1]),
        p50_ms=percentiles.get("50", float("nan")),
        p99_ms=percentiles.get("99", float("nan")),
        non2xx=int(non2xx[1]) if non2xx else 0,
        errors=errors,
    )


def run(
    url: str,
    seconds: int,
    rate: float | None = None,
    connections: int = CONNECTIONS,
    niceness: int = 0,
) -> WrkResult:
    """``wrk -t1 -c32 -d<seconds>s --latency url``, paced at ``rate`` req/s if given;
    with ``niceness``, behind whatever else runs on the load CPU."""
    argv = ["nice", "-n", str(niceness)] if niceness else []
    argv += ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if rate is not None:
        argv += ["-s", str(PACE_SCRIPT), url, "--", f"{rate:.1f}"]
    else:
        argv.append(url)
    done = subprocess.run(
        pinned(LOAD_CPU, argv), capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)
