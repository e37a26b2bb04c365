"""CPU instructions per request, counted by callgrind: the same count for the same
code whatever else the machine runs, so a budget in instructions can be checked in
CI where one in seconds cannot.

``python -m bench.instructions`` runs one interpreter under ``valgrind
--tool=callgrind`` that calls pingpong's RSGI callable in process (as
``bench/app_cost.py`` does: no sockets, no server) through each phase in turn:
``warmup`` requests, then ``requests`` more. Callgrind dumps its count whenever
the workload calls ``os.getppid()`` (a marker nothing else on the path calls), so
a phase's cost per request is (count at N2 requests - count at N1) / (N2 - N1):
start-up, imports and first-request caches are left out. Instrumentation starts
only once the imports are done (``callgrind_control -i on``), which halves the run.

Redis phases talk to a real redis-server (the toolkit's, outside valgrind): the
count is the pingpong process's side only. ``batch`` concurrent requests are
decided by one ``EVALSHA``; the run checks that from Redis' own command stats and
that no decision fell back to the local limiter.

``--check`` compares with ``bench/instructions_budget.json`` (over 10 % fails);
``--record`` rewrites that budget from this run. Results go to
``bench/results/instructions.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.env import BENCH, REPO, source

BUDGET = BENCH / "instructions_budget.json"
RESULTS = BENCH / "results" / "instructions.json"
TOLERANCE = 0.10  # a regression over 10 % of the budget fails
ADMIT_RATE = "100000000/second"
REJECT_RATE = "1/hour"
RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Phase:
    """One configuration measured in the workload."""

    name: str
    limit: str
    storage: str  # memory | redis
    warmup: int  # requests before the count starts (N1)
    requests: int  # requests counted (N2 - N1)
    batch: int = 1  # requests in flight together (Redis: decided by one EVALSHA)


PHASES = (
    Phase("memory-admitted", ADMIT_RATE, "memory", 200, 1000),
    Phase("memory-rejected", REJECT_RATE, "memory", 200, 1000),
    Phase("redis-admitted", ADMIT_RATE, "redis", 100, 300),
    Phase("redis-admitted-batch32", ADMIT_RATE, "redis", 320, 640, batch=32),
    Phase("redis-rejected", REJECT_RATE, "redis", 200, 1000),
)


# --- inside valgrind -------------------------------------------------------------


def marker() -> None:
    """callgrind dumps its count here (``--dump-before=getppid``)."""
    os.getppid()


async def drive(app: Callable[[Any, Any], Awaitable[None]], requests: int, batch: int) -> None:
    from bench.app_cost import Proto, Scope

    scope, proto = Scope(), Proto()
    if batch == 1:
        for _ in range(requests):
            await app(scope, proto)
        return
    for _ in range(requests // batch):
        await asyncio.gather(*(app(scope, proto) for _ in range(batch)))


async def run_phases(phases: list[Phase], redis_url: str) -> dict[str, Any]:
    """Each phase on a fresh service: warm up, marker, count, marker."""
    import redis

    from pingpong.config import Settings
    from pingpong.core.looplag import LOOP_LAG
    from pingpong.http.app import App
    from pingpong.service import Service

    stats = redis.Redis.from_url(redis_url, decode_responses=True) if redis_url else None
    checks: dict[str, Any] = {}
    # The lag monitor ticks 100 times a wall-clock second: a cost per second,
    # not per request, which a run slowed down by a busy machine would count
    # more of. Its first tick is put an hour away; what a request itself asks
    # of it (mark, current, standing) is still counted.
    LOOP_LAG.interval = 3600.0
    instrument_on()
    for phase in phases:
        url = redis_url if phase.storage == "redis" else "memory://"
        # A generous timeout: under callgrind the client side runs ~50x slower.
        service = Service(Settings(limit=phase.limit, storage=url, storage_timeout=5.0))
        app = App(service)
        if phase.storage == "redis":
            assert stats is not None
            stats.flushall()
            # The request path only: warm the pool and load the script, without
            # the fleet heartbeat ResilientStorage.ping starts (a task once a
            # second, which a slow run under callgrind would count in a phase).
            await getattr(service.storage, "primary", service.storage).ping()
        await drive(app, phase.warmup, phase.batch)
        if stats is not None and phase.storage == "redis":
            stats.config_resetstat()
        marker()
        await drive(app, phase.requests, phase.batch)
        marker()
        checks[phase.name] = phase_checks(service, phase, stats)
        await service.storage.aclose()
    return checks


def phase_checks(service: Any, phase: Phase, stats: Any) -> dict[str, Any]:
    """What the phase decided, and how: no fallback, the verdicts expected, and
    (Redis) the EVALSHA calls of the counted requests."""
    counters = service.counters
    found: dict[str, Any] = {
        "decisions": {"/".join(k): v for k, v in counters.decisions.items()},
        "fallbacks": dict(counters.fallbacks),
        "storage_errors": {"/".join(k): v for k, v in counters.storage_errors.items()},
    }
    if phase.storage == "redis" and stats is not None:
        commandstats = stats.info("commandstats")
        found["evalsha"] = int(commandstats.get("cmdstat_evalsha", {}).get("calls", 0))
    return found


def instrument_on() -> None:
    """Start counting now that the imports are done (callgrind runs with
    ``--instr-atstart=no``; uninstrumented code runs several times faster).
    ``callgrind_control`` reaches the process through vgdb, which a machine
    this busy can keep waiting: a few tries before giving up."""
    command = ["callgrind_control", "--instr=on", str(os.getpid())]
    tries = 3
    for _ in range(tries):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            return
    raise RuntimeError(f"callgrind_control failed {tries} times: {done.stderr[-2000:]}")


def workload(argv: list[str]) -> None:
    """``python -m bench.instructions --workload PHASES_JSON REDIS_URL OUT``."""
    import uvloop

    phases = [Phase(**p) for p in json.loads(argv[0])]
    checks = uvloop.run(run_phases(phases, argv[1]))
    Path(argv[2]).write_text(json.dumps(checks))
    sys.stdout.flush()
    os._exit(0)  # the interpreter's teardown is not worth counting


# --- outside valgrind --------------------------------------------------------------


def require_valgrind() -> None:
    missing = [t for t in ("valgrind", "callgrind_control") if shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"bench.instructions: missing {', '.join(missing)}: apt-get install -y valgrind"
            " (scripts/install-system-deps.sh installs it)"
        )


def count(phases: tuple[Phase, ...] = PHASES, redis_url: str = "") -> dict[str, Any]:
    """Run the workload under callgrind; per phase: instructions per request (and
    per batch), with the phase's own checks."""
    require_valgrind()
    with tempfile.TemporaryDirectory(prefix="pingpong-callgrind-") as tmp:
        out = Path(tmp) / "cg.out"
        checks_file = Path(tmp) / "checks.json"
        argv = [
            *("valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-before=getppid"),
            *("--dump-instr=no", "--dump-line=no", f"--callgrind-out-file={out}"),
            *(sys.executable, "-m", "bench.instructions", "--workload"),
            *(json.dumps([asdict(p) for p in phases]), redis_url, str(checks_file)),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
        if done.returncode != 0 or not checks_file.exists():
            output = f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{output}")
        parts = dumped_counts(out)
        checks = json.loads(checks_file.read_text())
    if len(parts) != 2 * len(phases):
        raise RuntimeError(f"expected {2 * len(phases)} callgrind dumps, got {len(parts)}")
    results: dict[str, Any] = {}
    for index, phase in enumerate(phases):
        counted = parts[2 * index + 1]  # dumps alternate: set-up + warm-up, counted
        if counted <= 0:
            raise RuntimeError(f"{phase.name}: nothing counted (instrumentation never on?)")
        per_request = counted / phase.requests
        results[phase.name] = {
            **asdict(phase),
            "instructions": counted,
            "per_request": round(per_request),
            "per_batch": round(per_request * phase.batch),
            **checks[phase.name],
        }
    return results


def dumped_counts(out: Path) -> list[int]:
    """The ``summary:`` of each dump ``out.1``, ``out.2``, ... in order."""
    counts = []
    part = 1
    while (path := out.with_name(f"{out.name}.{part}")).exists():
        for line in path.read_text().splitlines():
            if line.startswith("summary:"):
                counts.append(int(line.split()[1]))
                break
        part += 1
    return counts


def over_budget(results: dict[str, Any], budget: dict[str, int]) -> list[str]:
    """Every phase whose cost per request exceeds its budget by more than 10 %."""
    return [
        f"{name}: {results[name]['per_request']:,} instructions per request, budget "
        f"{limit:,} (+{results[name]['per_request'] / limit - 1:.1%}, more than "
        f"{TOLERANCE:.0%} over)"
        for name, limit in budget.items()
        if name in results and results[name]["per_request"] > limit * (1 + TOLERANCE)
    ]


def table(results: dict[str, Any], code: dict[str, Any]) -> str:
    dirty = ", src/ modified" if code["src_modified"] else ""
    lines = [
        f"pingpong at {code['commit']}{dirty} (src digest {code['src_digest']}), "
        "instructions counted by callgrind, in process, client side only",
        "| phase | counted requests (after warm-up) | per request | per batch | EVALSHA |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        batch = f"{r['per_batch']:,} ({r['batch']})" if r["batch"] > 1 else "-"
        evalsha = str(r["evalsha"]) if "evalsha" in r else "-"
        lines.append(
            f"| {name} | {r['requests']} (after {r['warmup']}) | {r['per_request']:,} "
            f"| {batch} | {evalsha} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--workload"]:
        workload(args[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when over the budget")
    parser.add_argument("--record", action="store_true", help="write this run as the budget")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--only", help="comma-separated phase names (a quick look)")
    options = parser.parse_args(args)
    phases: tuple[Phase, ...] = PHASES
    if options.only:
        wanted = options.only.split(",")
        phases = tuple(p for p in PHASES if p.name in wanted)
    from pingpong_toolkit.redis import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        server = RedisServer(workdir=Path(workdir)).start()
        try:
            results = count(phases, server.url)
        finally:
            server.stop()
    code = source()
    print(table(results, code))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({"source": code, "phases": results}, indent=2) + "\n")
    budget = {name: r["per_request"] for name, r in results.items()}
    if options.record and options.only:
        raise SystemExit("--record takes every phase: drop --only")
    if options.record:
        BUDGET.write_text(json.dumps(budget, indent=2) + "\n")
    if options.check:
        failures = over_budget(results, json.loads(BUDGET.read_text()))
        for failure in failures:
            print(f"OVER BUDGET: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
