"""A flood of distinct client keys through the in-process Limiter + MemoryStorage.

Run as ``python -m tests.reliability.flood_memory KEYS MAX_KEYS``, in a process of
its own so that its RSS is the limiter's alone. Prints one JSON object: RSS
before and after, the table size, its generation rotations, the cost of a new key as the
flood goes on, and how a real client (one
request for every 100 of the flood, far over its limit) fared against the GCRA
guarantee. The clock is fake (10 µs per flood request), so the run is exact and
fast: 1,000,000 keys are 10 simulated seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate
from pingpong.core.storage.memory import MemoryStorage

STEP_US = 10
REAL_EVERY = 100
RATE = Rate(10, 3600)  # 10/hour: a flood key lives an hour, far longer than the run
BURST = 10


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def flood(keys: int, max_keys: int) -> dict[str, object]:
    now = [1_000_000_000]
    storage = MemoryStorage(max_keys=max_keys, clock=lambda: now[0])
    limit = Limit(Algorithm.GCRA, RATE, BURST)
    limiter = Limiter(Rules([Policy("per-client", limit)]), storage)
    before = rss_kib()
    real_admitted = real_sent = 0
    started = now[0]
    tenth = max(1, keys // 10)
    timing: list[float] = []
    for i in range(keys):
        if i % tenth == 0:
            timing.append(time.perf_counter())
        now[0] += STEP_US
        # Addresses as the resolver makes them (IPv4 dotted, IPv6 /64 prefixes).
        client = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" if i < 1 << 24 else f"::{i}"
        await limiter.check("/ping", "GET", client, {})
        if i % REAL_EVERY == 0:
            real_sent += 1
            decision = await limiter.check("/ping", "GET", "192.0.2.1", {})
            real_admitted += decision.admitted
    timing.append(time.perf_counter())
    span_us = now[0] - started
    return {
        "keys": keys,
        "max_keys": max_keys,
        "rss_before_kib": before,
        "rss_after_kib": rss_kib(),
        "table": len(storage),
        "rotations": storage.rotations,
        "real_sent": real_sent,
        "real_admitted": real_admitted,
        # GCRA guarantee over the run: burst + floor(L / T).
        "real_bound": BURST + span_us // limit.interval_us,
        # Wall time per flood key (with its share of real requests), in µs, for
        # each tenth of the flood: flat means a new key costs the same however
        # full the table is.
        "us_per_key_by_tenth": [
            round((b - a) / tenth * 1e6, 1) for a, b in itertools.pairwise(timing)
        ],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(flood(int(sys.argv[1]), int(sys.argv[2])))))
