"""``python -m bench.control_plane``: what operator activity costs the other replicas.

Two replicas (A and B) share one redis-server. First 10,000 overrides are
bulk-loaded through A's admin API by ``pingpong admin import`` (batches), then
each replaced by a PUT of its own (16 in flight): both timed. Then B serves a
steady, paced /ping load while nobody takes admin operations (baseline), or a
third replica C on another redis-server takes 100 a second (elsewhere: the
machine as busy, none of it B's work), or A does (operations: override
replacements and resets, each announced to B). Each round runs the three
phases, in turn going first, so the machine's noise falls on all alike.
Printed: the load times, B's /ping p99 in each phase (medians over the rounds)
and each round's own ratio and difference, operations against elsewhere.

``--sync`` measures instead what the wall clock of a shared machine cannot:
B's Redis commands, bytes read, CPU time and longest event-loop step per
announced change, in process (``bench/control_sync.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from bench import control_sync
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer

TOKEN = "bench-admin-token-0123456789"  # noqa: S105 - a throwaway token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def key(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def replica(redis: RedisServer, logs: Path, name: str) -> tuple[Pingpong, str]:
    admin_port = free_port()
    server = Pingpong(
        ["--storage", redis.url, "--limit", "100000000/second", "--admin-port", str(admin_port),
         "--log-format", "text"],
        {"PINGPONG_ADMIN_TOKEN": TOKEN},
        name=name,
    ).start(logs)  # fmt: skip
    return server, f"http://127.0.0.1:{admin_port}/admin/v1"


async def paced(
    rate: float, seconds: float, send: Callable[[int], Coroutine[Any, Any, None]]
) -> int:
    """Call ``send(i)`` ``rate`` times a second for ``seconds``, open loop (a
    slow answer never delays the next call); the number of calls that failed."""
    tasks, started = [], time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(send(i)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if r is not None]
    if failures:
        print(f"{len(failures)} of {len(results)} failed, the first: {failures[0]!r}")
    return len(failures)


def import_file(admin: str, count: int, logs: Path) -> float:
    """Seconds for ``pingpong admin import FILE`` to load ``count`` overrides
    (batches of MAX_BATCH, one after the other): what an operator types."""
    source = logs / "overrides.jsonl"
    line = {"policy": "default", "rate": "1000/minute", "burst": 100, "expires_in": 3600,
            "reason": "bulk"}  # fmt: skip
    source.write_text("".join(json.dumps({**line, "key": key(i)}) + "\n" for i in range(count)))
    base = admin.removesuffix("/admin/v1")
    command = [sys.executable, "-m", "pingpong", "admin", "import", str(source),
               "--url", base, "--token", TOKEN, "--timeout", "60"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return seconds


async def bulk_load(admin: str, count: int) -> float:
    """Seconds to PUT ``count`` overrides one by one, 16 requests in flight."""
    body = {"rate": "1000/minute", "burst": 100, "expires_in": 3600, "reason": "bulk"}
    queue = iter(range(count))
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def worker() -> None:
            for i in queue:
                async with session.put(f"{admin}/overrides/default/{key(i)}", json=body) as answer:
                    assert answer.status == 200, await answer.text()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(16)))
        return time.monotonic() - started


async def operate(admin: str, count: int, ops: float, seconds: float) -> int:
    """``ops`` admin operations a second on A: override replacements and
    resets, spread over every stored override; the number that failed."""
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def one(i: int) -> None:
            target = key(i * 7919 % count)
            if i % 2:
                body = {"rate": f"{1000 + i % 50}/minute", "expires_in": 3600, "reason": "op"}
                request = session.put(f"{admin}/overrides/default/{target}", json=body)
            else:
                request = session.delete(f"{admin}/clients/default/{target}")
            async with request as answer:
                assert answer.status == 200, await answer.text()

        return await paced(ops, seconds, one)


def drive_admin(
    admin: str, count: int, ops: float, seconds: float, failed: Any, ready: Any, go: Any
) -> None:
    """In its own process, so that the client measuring B shares no event loop
    (nor GIL) with the one driving A; ``failed`` (a shared int) counts the
    operations that did not answer 200. It says ``ready`` once started (a
    spawned interpreter's imports are a second of CPU that must fall outside
    the measurement) and begins on ``go``."""
    ready.set()
    go.wait()
    failed.value = asyncio.run(operate(admin, count, ops, seconds))


async def ping_phase(ping_url: str, rate: float, seconds: float) -> dict[str, float]:
    """B's /ping latencies under a paced load."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def ping(_: int) -> None:
            started = time.perf_counter()
            async with session.get(ping_url) as answer:
                await answer.read()
                assert answer.status == 200
            latencies.append(time.perf_counter() - started)

        failed = await paced(rate, seconds, ping)
    latencies.sort()
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "max_ms": 1000 * latencies[-1],
        "requests": len(latencies),
        "failed": failed,
    }


def cpu_seconds(server: Pingpong) -> float:
    """The process's user + system CPU time so far (Linux /proc): what a phase
    costs B, whatever else the machine is busy with."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(admin: str | None, b: Pingpong, args: argparse.Namespace) -> dict[str, float]:
    """B's /ping latencies, and B's CPU time per second, while ``admin`` (a
    replica's admin API) takes the operations, or nobody does (None)."""
    context = multiprocessing.get_context("spawn")
    failed, ready, go = context.Value("i", 0), context.Event(), context.Event()
    driver = None
    if admin is not None:
        driver_args = (admin, args.overrides, args.ops, args.seconds, failed, ready, go)
        driver = context.Process(target=drive_admin, args=driver_args)
        driver.start()
        assert ready.wait(60), "the admin driver did not start"
        time.sleep(1.0)  # the end of its start-up is no one's measurement
    cpu_before = cpu_seconds(b)
    go.set()
    try:
        latencies = asyncio.run(ping_phase(b.url + "/ping", args.ping_rate, args.seconds))
        cpu = 1000 * (cpu_seconds(b) - cpu_before) / args.seconds
    finally:
        if driver is not None:
            driver.join(args.seconds + 30)
            assert driver.exitcode == 0, f"the admin driver exited {driver.exitcode}"
    return {**latencies, "b_cpu_ms_per_s": cpu, "admin_failed": failed.value}


PHASES = ("baseline", "elsewhere", "operations")


def measure(
    a_admin: str, b: Pingpong, c_admin: str, args: argparse.Namespace, logs: Path
) -> dict[str, Any]:
    """``elsewhere``: the same operations on C, which shares nothing with B: the
    machine as busy as with ``operations`` on A, none of it B's work."""
    import_seconds = import_file(a_admin, args.overrides, logs)
    put_seconds = asyncio.run(bulk_load(a_admin, args.overrides))  # each replaces one
    import_file(c_admin, args.overrides, logs)
    target = {"baseline": None, "elsewhere": c_admin, "operations": a_admin}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
    for r in range(args.rounds):  # rotated: each phase goes first in turn
        for name in PHASES[r % 3 :] + PHASES[: r % 3]:
            rounds[name].append(phase(target[name], b, args))
    summary = {
        name: {m: statistics.median(r[m] for r in results) for m in results[0]}
        for name, results in rounds.items()
    }
    pairs = list(zip(rounds["elsewhere"], rounds["operations"], strict=True))
    return {
        "import_seconds": import_seconds,
        "put_seconds": put_seconds,
        "overrides": args.overrides,
        "summary": summary,
        # Each round's own comparison: the machine's drift between rounds cancels.
        "p99_ratio_per_round": [o["p99_ms"] / e["p99_ms"] for e, o in pairs],
        "p99_added_ms_per_round": [o["p99_ms"] - e["p99_ms"] for e, o in pairs],
        "rounds": rounds,
    }


def sync_costs(overrides: int, changes: int) -> int:
    redis = RedisServer().start()
    try:
        result = control_sync.measure(redis, overrides, changes)
    finally:
        redis.stop()
    print(json.dumps(result))
    print(
        f"{overrides} overrides stored, {changes} changes: per sync "
        f"{result['redis_commands_per_sync']}, {result['redis_bytes_per_sync']:.0f} bytes "
        f"from Redis, {result['cpu_us_per_sync']:.0f} us CPU; longest step "
        f"{result['longest_step_cpu_us']:.0f} us CPU ({result['longest_step_wall_us']:.0f} us "
        f"wall), garbage collection at most {result['longest_collection_in_a_step_us']:.0f} us "
        f"in a step; 100 changes/s = {100 * result['core_share_at_100_per_s']:.1f} % of a core\n"
        f"a full collection: {result['full_collection_us_before_load']:.0f} us CPU before the "
        f"load, {result['full_collection_us_loaded']:.0f} us with two replicas holding "
        f"{overrides} overrides each; {result['tracked_objects_per_override']:.3f} objects "
        f"tracked per override and replica"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.control_plane", description=__doc__)
    parser.add_argument("--overrides", type=int, default=10_000)
    parser.add_argument("--ops", type=float, default=100.0, help="admin operations a second on A")
    parser.add_argument("--ping-rate", type=float, default=200.0, help="/ping a second on B")
    parser.add_argument("--seconds", type=float, default=8.0, help="each phase")
    parser.add_argument("--rounds", type=int, default=3, help="each runs the three phases")
    parser.add_argument("--sync", action="store_true", help="B's cost per change, in process")
    parser.add_argument("--changes", type=int, default=1000, help="with --sync: changes on A")
    args = parser.parse_args(argv)
    if args.sync:
        return sync_costs(args.overrides, args.changes)
    logs = Path(tempfile.mkdtemp(prefix="bench-control-plane-"))
    redis = RedisServer(workdir=logs / "redis").start()
    other_redis = RedisServer(workdir=logs / "redis-c").start()
    servers: list[Pingpong] = []
    try:
        admins = []
        for server_redis, name in ((redis, "replica-a"), (redis, "replica-b"),
                                   (other_redis, "replica-c")):  # fmt: skip
            server, admin = replica(server_redis, logs, name)
            servers.append(server)
            admins.append(admin)
        result = measure(admins[0], servers[1], admins[2], args, logs)
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        other_redis.stop()
    summary = result["summary"]
    base, elsewhere, busy = (summary[name] for name in PHASES)
    print(json.dumps(result))
    ratios, added = result["p99_ratio_per_round"], result["p99_added_ms_per_round"]
    print(
        f"{args.overrides} overrides: pingpong admin import {result['import_seconds']:.1f} s; "
        f"one PUT each, 16 in flight, {result['put_seconds']:.1f} s\n"
        f"B /ping p99 (medians): {base['p99_ms']:.2f} ms at rest, {elsewhere['p99_ms']:.2f} ms "
        f"with {args.ops:g} admin operations/s on C (another Redis), {busy['p99_ms']:.2f} ms "
        f"with them on A; per round, A / C "
        f"{' '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}), "
        f"added {' '.join(f'{x:+.2f}' for x in added)} ms (median "
        f"{statistics.median(added):+.2f}); "
        f"p50 {base['p50_ms']:.2f} / {elsewhere['p50_ms']:.2f} / {busy['p50_ms']:.2f} ms; "
        f"B's CPU {base['b_cpu_ms_per_s']:.0f} / {elsewhere['b_cpu_ms_per_s']:.0f} / "
        f"{busy['b_cpu_ms_per_s']:.0f} ms a second; "
        f"load average {os.getloadavg()[0]:.1f}; logs in {logs}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
