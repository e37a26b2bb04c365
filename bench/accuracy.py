"""Accuracy at full speed: 3 replicas sharing one Redis, 64 concurrent connections
from one client address, counted against the documented GCRA guarantee."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.servers import BenchRedis, Config, Server, start

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


async def hammer(urls: list[str], seconds: float) -> tuple[Counter[int], float]:
    """GET every URL round-robin from CONCURRENCY connections until the deadline;
    counts statuses (0 = transport error) and returns the elapsed wall time from
    the first request sent to the last response read."""
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        deadline = began + seconds

        async def worker(url: str) -> None:
            while time.monotonic() < deadline:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    statuses[0] += 1

        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(CONCURRENCY)))
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
