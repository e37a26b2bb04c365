"""Memory per key: pingpong's MemoryStorage + Limiter driven in-process (run as
``python -m bench.memory N`` so the RSS is this process's alone), and the size of
the GCRA keys pingpong leaves in Redis."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.env import REPO
from bench.servers import LOAD_CPU, BenchRedis, Config, pinned, running

RATE = "100/minute"
KEY_RATE = "100/hour"  # T = 36 s: every key outlives the measurement
HOUR_US = 3_600_000_000


def rss_bytes() -> int:
    """VmRSS from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def client_ip(i: int, net: int) -> str:
    return f"{net}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def measure(keys: int, refill_budget: float) -> dict[str, Any]:
    """Admit one request for each of ``keys`` distinct clients (a fake clock holds
    still, so none expires, and the table is sized to hold them all); then let
    them all go idle and admit new clients, for at most ``refill_budget`` seconds
    or ``2 * keys`` clients or until every idle key is let go."""
    # Imported here: only the measuring subprocess needs pingpong itself.
    from pingpong.config import Settings
    from pingpong.core.limiter import Limiter, Rules
    from pingpong.core.storage.memory import MemoryStorage

    settings = Settings(limit=RATE)
    now = [time.monotonic_ns() // 1000]
    max_keys = 2 * keys + 2  # the fill fits whole, and a bounded table must let go
    storage = MemoryStorage(max_keys=max_keys, clock=lambda: now[0])
    limiter = Limiter(Rules(settings.effective_policies()), storage)

    async def fill(net: int, start: int, stop: int) -> int:
        admitted = 0
        for i in range(start, stop):
            decision = await limiter.check("/ping", "GET", client_ip(i, net), {})
            admitted += decision.admitted
        return admitted

    gc.collect()
    before = rss_bytes()
    began = time.perf_counter()
    admitted = asyncio.run(fill(10, 0, keys))
    fill_seconds = time.perf_counter() - began
    gc.collect()
    after = rss_bytes()
    live = len(storage)

    now[0] += HOUR_US  # every key idle far past its TAT
    chunk = max(keys // 100, 1)
    refilled = largest = 0
    began = time.perf_counter()
    while refilled < 2 * keys and time.perf_counter() - began < refill_budget:
        asyncio.run(fill(11, refilled, refilled + chunk))
        refilled += chunk
        largest = max(largest, len(storage))
        if live + refilled - len(storage) >= live:  # every idle key let go
            break
    refill_seconds = time.perf_counter() - began
    gc.collect()
    reclaimed = live + refilled - len(storage)
    return {
        "keys": keys,
        "limit": RATE,
        "memory_max_keys": max_keys,
        "admitted": admitted,
        "table_size_after_fill": live,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "bytes_per_key": round((after - before) / keys, 1),
        "fill_decision_us": round(fill_seconds / keys * 1e6, 2),
        "refill_budget_s": refill_budget,
        "refilled_new_keys": refilled,
        "refill_decision_us": round(refill_seconds / max(refilled, 1) * 1e6, 2),
        "idle_keys_reclaimed": reclaimed,
        "table_size_max_during_refill": largest,
        "table_size_after_refill": len(storage),
        "rss_growth_on_refill_bytes": rss_bytes() - after,
        "idle_reclaimed": reclaimed >= live * 0.99,
    }


def in_process(keys: int, refill_budget: float) -> dict[str, Any]:
    """``measure`` in a fresh interpreter (the repo's venv), pinned like the load."""
    done = subprocess.run(
        pinned(LOAD_CPU, [sys.executable, "-m", "bench.memory", str(keys), str(refill_budget)]),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=refill_budget + 240,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _distinct_clients(url: str, count: int) -> int:
    """``count`` requests, each from its own X-Forwarded-For address."""
    ok = 0
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(count))

        async def worker() -> None:
            nonlocal ok
            for i in queue:
                headers = {"X-Forwarded-For": client_ip(i, 10)}
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        await asyncio.gather(*(worker() for _ in range(32)))
    return ok


def redis_keys(redis: BenchRedis, logs: Path, count: int) -> dict[str, Any]:
    """Distinct clients through pingpong (trusting 127.0.0.1 as a proxy): one
    string key with a TTL each; MEMORY USAGE and used_memory growth per key."""
    config = Config("pingpong-redis-keys", "pingpong", "redis", "keys")
    client = redis.client
    with running(
        config, redis.url, logs, rate=KEY_RATE, extra=("--trusted-proxy", "127.0.0.1/32")
    ) as s:
        redis.reset()
        before = int(client.info("memory")["used_memory"])
        admitted = asyncio.run(_distinct_clients(s.url, count))
        after = int(client.info("memory")["used_memory"])
    keys = list(client.scan_iter(match="pp:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.pttl(key)
    answers = pipe.execute()
    types = set(answers[0::2])
    ttls = answers[1::2]
    sample = keys[:200]
    usage = [client.memory_usage(key) or 0 for key in sample]
    return {
        "limit": KEY_RATE,
        "requests": count,
        "admitted": admitted,
        "keys": len(keys),
        "types": sorted(types),
        "all_strings": types == {"string"},
        "all_have_ttl": all(ttl > 0 for ttl in ttls),
        "max_pttl_ms": max(ttls, default=0),
        "example_key": keys[0] if keys else None,
        "memory_usage_bytes_avg": round(sum(usage) / len(usage), 1) if usage else None,
        "used_memory_per_key_bytes": round((after - before) / max(len(keys), 1), 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), float(sys.argv[2]))))
