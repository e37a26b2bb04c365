"""Soak: one worker with Redis under mixed allowed/throttled load for a while.

    PINGPONG_SOAK_SECONDS=600 PINGPONG_SOAK_REPORT=soak.json \\
        .venv/bin/pytest tests/reliability/test_soak.py -s

runs the 10-minute soak whose figures docs/reliability.md records; CI runs the
same test for 120 s. Steady clients stay within their limit (all 200), flooders
send as fast as they can from four addresses (mostly 429), and churners rotate
through 5,000 addresses, so keys keep being created and expiring in Redis.

Allowed growth, after a warm-up of the first third of the run: RSS +8 MiB,
open file descriptors +4; the last third's p50 and p99 within 1.5x the first
third's (+2 ms and +10 ms of slack for a noisy shared machine). No error: every
answer is a 200 or a 429, no connection error, no 5xx.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.redis import RedisServer

from .helpers import Pin, open_fds, percentile, rss_kib

SECONDS = float(os.environ.get("PINGPONG_SOAK_SECONDS", "120"))
BUCKET = 10.0 if SECONDS <= 180 else 60.0  # seconds per reported row
RSS_GROWTH_KIB = 8 * 1024
FD_GROWTH = 4
STEADY = [f"198.51.100.{i}" for i in range(1, 9)]  # 8 clients, 10 req/s each, limit 50/s
FLOODERS = [f"203.0.113.{i}" for i in range(1, 5)]  # 4 clients, as fast as they can
CHURN = [f"10.{i // 250}.{i % 250}.1" for i in range(5000)]  # rotated through by 4 workers


@dataclass
class Bucket:
    latencies: array[float] = field(default_factory=lambda: array("d"))
    codes: dict[str, int] = field(default_factory=dict)


async def soak_load(url: str, seconds: float, origin: float) -> list[Bucket]:
    buckets = [Bucket() for _ in range(int(seconds // BUCKET) + 2)]
    deadline = origin + seconds
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:

        async def worker(index: int) -> None:
            steady = index < 8
            sent = 0
            while (started := time.monotonic()) < deadline:
                if steady:
                    client = STEADY[index]
                elif index < 12:
                    client = FLOODERS[index - 8]
                else:
                    client = CHURN[(index + 4 * sent) % len(CHURN)]
                sent += 1
                try:
                    async with session.get(
                        url + "/ping", headers={"X-Forwarded-For": client}
                    ) as response:
                        await response.read()
                        code = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    code = type(exc).__name__
                bucket = buckets[int((started - origin) // BUCKET)]
                bucket.latencies.append(time.monotonic() - started)
                bucket.codes[code] = bucket.codes.get(code, 0) + 1
                if steady:
                    await asyncio.sleep(max(0.0, started + 0.1 - time.monotonic()))

        await asyncio.gather(*(worker(i) for i in range(16)))
    return [b for b in buckets if b.latencies]


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
def test_soak(pingpong: PingpongFactory, redis_server: RedisServer, pin: Pin) -> None:
    server = pingpong(
        "--storage", redis_server.url, "--limit", "50/second", "--trusted-proxy", "127.0.0.1/32"
    )  # fmt: skip
    assert server.process is not None
    pid = server.process.pid
    pin(pid)
    pin(int(redis_server.cli("INFO", "server").split("process_id:")[1].split()[0]))
    resources: list[tuple[float, int, int]] = []  # (time, RSS KiB, fds)
    done = threading.Event()

    def sample_resources() -> None:
        while not done.is_set():
            resources.append((time.monotonic(), rss_kib(pid), open_fds(pid)))
            done.wait(1.0)

    sampler = threading.Thread(target=sample_resources, daemon=True)
    origin = time.monotonic()
    sampler.start()
    try:
        buckets = asyncio.run(soak_load(server.url, SECONDS, origin))
    finally:
        done.set()
        sampler.join(5)
    assert server.process is not None and server.process.alive(), server.output()[-3000:]

    rows = []
    for index, bucket in enumerate(buckets):
        at = [r for r in resources if r[0] - origin < (index + 1) * BUCKET]
        rows.append(
            {
                "t_s": int((index + 1) * BUCKET),
                "requests": len(bucket.latencies),
                "codes": bucket.codes,
                "p50_ms": round(percentile(bucket.latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(bucket.latencies, 0.99) * 1000, 2),
                "rss_kib": at[-1][1],
                "fds": at[-1][2],
            }
        )
    third = len(buckets) // 3
    first = array("d", (x for b in buckets[:third] for x in b.latencies))
    last = array("d", (x for b in buckets[-third:] for x in b.latencies))
    warm_end = origin + SECONDS / 3
    settled = [r for r in resources if r[0] >= warm_end]
    figures: dict[str, Any] = {
        "seconds": SECONDS,
        "requests": sum(len(b.latencies) for b in buckets),
        "codes": {
            code: sum(b.codes.get(code, 0) for b in buckets)
            for code in sorted({c for b in buckets for c in b.codes})
        },
        "rss_kib": {"start": resources[0][1], "after_warmup": settled[0][1],
                    "max_after_warmup": max(r[1] for r in settled), "end": resources[-1][1]},
        "fds": {"start": resources[0][2], "after_warmup": settled[0][2],
                "max_after_warmup": max(r[2] for r in settled), "end": resources[-1][2]},
        "first_third_ms": {"p50": round(percentile(first, 0.5) * 1000, 2),
                           "p99": round(percentile(first, 0.99) * 1000, 2)},
        "last_third_ms": {"p50": round(percentile(last, 0.5) * 1000, 2),
                          "p99": round(percentile(last, 0.99) * 1000, 2)},
        "redis_keys_at_end": len(limiter_keys(redis_server)),
        "rows": rows,
    }  # fmt: skip
    print(json.dumps(figures, indent=1))
    if target := os.environ.get("PINGPONG_SOAK_REPORT"):
        with open(target, "w") as out:
            json.dump(figures, out, indent=1)

    assert set(figures["codes"]) == {"200", "429"}, figures["codes"]  # no error of any kind
    assert figures["codes"]["200"] > 0 and figures["codes"]["429"] > 0
    rss, fds = figures["rss_kib"], figures["fds"]
    assert rss["max_after_warmup"] - rss["after_warmup"] <= RSS_GROWTH_KIB, rss
    assert fds["max_after_warmup"] - fds["after_warmup"] <= FD_GROWTH, fds
    p_first, p_last = figures["first_third_ms"], figures["last_third_ms"]
    assert p_last["p50"] <= 1.5 * p_first["p50"] + 2, (p_first, p_last)
    assert p_last["p99"] <= 1.5 * p_first["p99"] + 10, (p_first, p_last)
    assert "Traceback" not in server.output()


def limiter_keys(redis_server: RedisServer) -> list[str]:
    """The limiter's keys (the fleet's heartbeat lives while a replica runs)."""
    keys = redis_server.cli("KEYS", "pp:*").split()
    return [key for key in keys if not key.startswith("pp:{pp-admin}")]
