"""Accuracy at full speed: 3 replicas sharing one Redis, 64 concurrent connections
from one client address, counted against the documented GCRA guarantee (``run``,
part of ``python -m bench``).

``python -m bench.accuracy [--quick] [--runs N]``: the cold-start case under CPU
pressure on every topology: three replicas started cold and loaded at once by
48 connections each (4 keys, 20/second burst 20) beside two CPU hogs on their
core, the storage on the other core ahead of the load generator; each run
prints admitted per key against ``B + floor(L/T)`` and the decisions taken
without Redis (there must be none). ``--quick``: one short run per topology."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.servers import BenchRedis, Config, Server, start
from pingpong_toolkit.faultproxy import FaultProxy
from pingpong_toolkit.fleet import as_another_machine, start_fleet, storage_reach
from pingpong_toolkit.hog import CpuHogs
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.tls import make_certificates
from pingpong_toolkit.topologies import RedisTopology, Topology

REPLICAS = 3
CONCURRENCY = 64
COUNT, PERIOD = 100, 10  # "100/10s": burst B = 100, emission interval T = 0.1 s
RATE = f"{COUNT}/{PERIOD}s"


def gcra_bound(elapsed: float, count: int = COUNT, period: int = PERIOD) -> int:
    """README: in any interval of length L one key is admitted at most B + floor(L/T)
    times (B = N, T = period/N rounded up to the microsecond)."""
    interval_us = -(-period * 1_000_000 // count)
    return count + int(elapsed * 1_000_000) // interval_us


def fixed_window_bound(elapsed: float, count: int = COUNT, period: int = PERIOD) -> int:
    """The peers' default (`limits` fixed window): N per window, a window opening at
    the key's first hit (INCRBY, then EXPIRE w), so a span of length L from the
    first hit holds at most floor(L/w) + 1 windows."""
    return count * (int(elapsed // period) + 1)


async def hammer(
    urls: list[str],
    seconds: float,
    concurrency: int = CONCURRENCY,
    clients: Sequence[str] = (),
    admitted: Counter[str] | None = None,
) -> tuple[Counter[int], float]:
    """GET every URL round-robin from ``concurrency`` connections until the
    deadline (connection i speaking for ``clients[i % len]`` through
    X-Forwarded-For, counted in ``admitted`` when answered 200); counts statuses
    (0 = transport error) and returns the elapsed wall time from the first
    request sent to the last response read."""
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        deadline = began + seconds

        async def worker(index: int) -> None:
            url = urls[index % len(urls)]
            client = clients[index % len(clients)] if clients else ""
            headers = {"X-Forwarded-For": client} if client else {}
            while time.monotonic() < deadline:
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1
                        if response.status == 200 and admitted is not None:
                            admitted[client] += 1
                except (aiohttp.ClientError, TimeoutError):
                    statuses[0] += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.monotonic() - began
    return statuses, elapsed


def run(family: str, redis: BenchRedis, logs: Path, seconds: float) -> dict[str, Any]:
    """Start REPLICAS servers of ``family`` on one Redis and hammer them."""
    config = Config(f"{family}-accuracy", family, "redis", "accuracy")
    replicas: list[Server] = []
    try:
        for _ in range(REPLICAS):  # start all, then wait: startups overlap
            replicas.append(start(config, redis.url, logs, rate=RATE, wait=False))
        for server in replicas:
            server.wait_ready()
        redis.reset()
        statuses, elapsed = asyncio.run(hammer([s.url for s in replicas], seconds))
        keys = redis_key_report(redis) if family == "pingpong" else None
    finally:
        for server in replicas:
            with contextlib.suppress(Exception):
                server.stop()
    admitted = statuses.get(200, 0)
    bound = gcra_bound(elapsed)
    own = bound if family == "pingpong" else fixed_window_bound(elapsed)
    return {
        "family": family,
        "replicas": REPLICAS,
        "connections": CONCURRENCY,
        "limit": RATE,
        "seconds": round(elapsed, 3),
        "admitted": admitted,
        "rejected": statuses.get(429, 0),
        "other": sum(n for status, n in statuses.items() if status not in (200, 429)),
        "gcra_bound": bound,
        "excess_over_gcra_bound": max(0, admitted - bound),
        "own_guarantee_bound": own,
        "excess_over_own_guarantee": max(0, admitted - own),
        "redis_keys": keys,
    }


def redis_key_report(redis: BenchRedis) -> dict[str, Any]:
    """Every key pingpong left: its type, TTL and MEMORY USAGE."""
    client = redis.client
    keys = sorted(client.scan_iter(count=1000))[:100]  # one per client: a handful
    report = []
    for key in keys:
        report.append(
            {
                "key": key,
                "type": client.type(key),
                "pttl_ms": client.pttl(key),
                "memory_usage_bytes": client.memory_usage(key),
                "value": client.get(key) if client.type(key) == "string" else None,
            }
        )
    return {"count": client.dbsize(), "keys": report}


COLD_RATE, COLD_BURST = 20, 20  # 20/second, burst 20: T = 50 ms
COLD_KEYS = [f"198.51.100.{n}" for n in range(1, 5)]
COLD_REPLICAS, COLD_CONNECTIONS, COLD_HOGS = 3, 48, 2
COLD_TOPOLOGIES = ("redis", "rediss", "sentinel", "cluster", "redis --workers 2")


@contextlib.contextmanager
def topology(name: str, workdir: Path) -> Iterator[Topology]:
    """One storage topology from the toolkit, stopped afterwards."""
    started: Any
    if name.startswith("redis"):
        tls = make_certificates(workdir / "tls") if name == "rediss" else None
        server = RedisServer(workdir=workdir / "redis", tls=tls).start()
        started = RedisTopology(server, FaultProxy(server.port).start())
    elif name == "sentinel":
        started = RedisSentinel(workdir=workdir / "sentinel").start()
    else:
        started = RedisCluster(workdir=workdir / "cluster").start()
    try:
        yield started
    finally:
        started.stop()


def cold_run(name: str, seconds: float, workdir: Path) -> dict[str, Any]:
    """Three cold replicas of ``name`` loaded at once beside the hogs."""
    cpus = sorted(os.sched_getaffinity(0))
    servers_cpus, own_cpu = set(cpus[:-1]) or set(cpus), {cpus[-1]}
    env = {
        "PINGPONG_LIMIT": f"{COLD_RATE}/second",
        "PINGPONG_BURST": str(COLD_BURST),
        "PINGPONG_TRUSTED_PROXY": "127.0.0.1/32",
        "PINGPONG_WORKERS": "2" if name.endswith("--workers 2") else "1",
        "PINGPONG_DRAIN_SECONDS": "0",
    }
    with topology(name.split()[0], workdir) as storage:
        url, pids = storage_reach(storage)
        as_another_machine(pids, own_cpu)
        os.sched_setaffinity(0, own_cpu)  # the load generator beside the storage
        place = lambda pid: os.sched_setaffinity(pid, servers_cpus)  # noqa: E731
        fleet = start_fleet(COLD_REPLICAS, url, env, workdir, place)
        try:
            admitted: Counter[str] = Counter()
            with CpuHogs(COLD_HOGS, servers_cpus):
                statuses, elapsed = asyncio.run(
                    hammer(
                        [u + "/ping" for u in fleet.urls], seconds,
                        COLD_REPLICAS * COLD_CONNECTIONS, COLD_KEYS, admitted,
                    )
                )  # fmt: skip
            fallbacks = fleet.metric("pingpong_storage_fallbacks_total")
            errors = dict(fleet.storage_errors())
        finally:
            fleet.stop()
            os.sched_setaffinity(0, set(cpus))
    bound = COLD_BURST + int(elapsed * COLD_RATE)
    return {
        "topology": name,
        "answers": sum(statuses.values()),
        "admitted_max": max(admitted[k] for k in COLD_KEYS),
        "admitted_min": min(admitted[k] for k in COLD_KEYS),
        "bound": bound,
        "fallbacks": fallbacks,
        "shed": statuses.get(503, 0),
        "storage_errors": errors,
        "load_average": round(os.getloadavg()[0], 1),
        "within": max(admitted[k] for k in COLD_KEYS) <= bound and fallbacks == 0,
    }


def summary(results: list[dict[str, Any]]) -> str:
    """A markdown table: per topology, admitted per key against the bound."""
    lines = [
        "| topology | runs | admitted per key | bound | decided without Redis | within |",
        "|---|---:|---|---|---:|---|",
    ]
    for name in COLD_TOPOLOGIES:
        rows = [r for r in results if r["topology"] == name]
        low, high = min(r["admitted_min"] for r in rows), max(r["admitted_max"] for r in rows)
        bounds = f"{min(r['bound'] for r in rows)}-{max(r['bound'] for r in rows)}"
        fallbacks = int(sum(r["fallbacks"] for r in rows))
        within = f"{sum(r['within'] for r in rows)} of {len(rows)}"
        lines.append(f"| {name} | {len(rows)} | {low}-{high} | {bounds} | {fallbacks} | {within} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one 2 s run per topology")
    parser.add_argument("--runs", type=int, default=10, help="runs per topology (default 10)")
    parser.add_argument("--seconds", type=float, default=4.0, help="load per run")
    args = parser.parse_args()
    runs, seconds = (1, 2.0) if args.quick else (args.runs, args.seconds)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pp-accuracy-") as tmp:
        for run_index in range(runs):
            for name in COLD_TOPOLOGIES:
                found = cold_run(name, seconds, Path(tmp) / f"{run_index}-{len(results)}")
                results.append(found)
                print(json.dumps(found), flush=True)
    print(summary(results))
    sys.exit(0 if all(r["within"] for r in results) else 1)


if __name__ == "__main__":
    main()
