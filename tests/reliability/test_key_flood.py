"""A flood of distinct client keys: memory stays bounded, real clients stay
limited, Redis keys carry TTLs and expire."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
import redis

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until
from tests import REPO

from .helpers import Background, assert_shed_counted, report, rss_kib


def flood_in_process(keys: int, max_keys: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.reliability.flood_memory", str(keys), str(max_keys)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_million_keys_within_the_default_bound() -> None:
    """1,000,000 keys under a bound of 2,000,000: every key is kept (the old
    generation was still empty when the young one rotated), memory grows by what
    the keys need and no more, and the real client gets exactly its burst."""
    result = flood_in_process(1_000_000, 2_000_000)
    report("key_flood_1M_default_bound", **result)
    assert result["table"] == 1_000_001  # the flood and the real client: nothing forgotten
    growth_mib = (result["rss_after_kib"] - result["rss_before_kib"]) / 1024
    assert growth_mib < 250, result  # measured ~170 MiB: ~180 bytes a key
    assert result["real_admitted"] <= result["real_bound"], result


@pytest.fixture(scope="module")
def flood_past_the_bound() -> dict[str, Any]:
    """250,000 keys through a table bounded at 50,000 (memory_max_keys)."""
    result = flood_in_process(250_000, 50_000)
    report("key_flood_250k_bound_50k", **result)
    return result


@pytest.mark.slow
def test_flood_past_the_table_bound_stays_bounded(flood_past_the_bound: dict[str, Any]) -> None:
    result = flood_past_the_bound
    assert result["table"] <= 50_000
    assert result["rotations"] >= 200_000 // 25_000  # a generation is half the bound
    growth_mib = (result["rss_after_kib"] - result["rss_before_kib"]) / 1024
    assert growth_mib < 20, result  # measured ~10 MiB: 50,000 keys' worth


@pytest.mark.slow
def test_flood_past_the_table_bound_keeps_real_clients_limited(
    flood_past_the_bound: dict[str, Any],
) -> None:
    """A real client hammering far over its limit during the flood is held to
    it. Being rejected is being in use: evicting a throttled client's key as
    "least recently used" hands it a fresh burst each time the flood wraps
    around the table."""
    result = flood_past_the_bound
    assert result["real_admitted"] <= result["real_bound"], result


@pytest.mark.slow
def test_flood_past_the_table_bound_costs_the_same_per_key(
    flood_past_the_bound: dict[str, Any],
) -> None:
    """Evicting must not get slower as the flood goes on: a new key late in the
    flood costs about what one did at its start (4x and 10 µs of slack)."""
    tenths = flood_past_the_bound["us_per_key_by_tenth"]
    assert max(tenths) <= 4 * tenths[0] + 10, tenths


@pytest.mark.slow
def test_redis_keys_of_a_flood_have_ttls_and_expire(
    pingpong: PingpongFactory, redis_server: RedisServer
) -> None:
    """50,000 distinct clients through a trusted proxy (X-Forwarded-For) against
    a real server on Redis, while a real client floods: every key has a TTL,
    they are all gone once it passes, the server's RSS stays flat and the real
    client gets exactly what GCRA allows."""
    keys, rate, period = 50_000, 2, 20  # T = 10 s: a key lives 10 s after one request
    server = pingpong(
        "--storage", redis_server.url, "--limit", f"{rate}/{period}s",
        "--trusted-proxy", "127.0.0.1/32",
    )  # fmt: skip
    assert server.process is not None
    pid = server.process.pid

    async def flood(keys: int = keys) -> list[tuple[int, float]]:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            answers: list[tuple[int, float]] = []  # (status, when it was read)

            async def worker(start: int) -> None:
                for i in range(start, keys, 64):
                    address = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
                    headers = {"X-Forwarded-For": address}
                    async with session.get(server.url + "/ping", headers=headers) as response:
                        await response.read()
                        answers.append((response.status, time.monotonic()))

            await asyncio.gather(*(worker(i) for i in range(64)))
            return answers

    warm = asyncio.run(flood(5000))  # so that the measured RSS is past the pools' warm-up
    redis_server.cli("FLUSHALL")
    rss_before = rss_kib(pid)
    with Background([server.url], 120, 2, ["192.0.2.1"]) as real:
        started = time.monotonic()
        answers = asyncio.run(flood())
        elapsed = time.monotonic() - started
    rss_after = rss_kib(pid)
    # One request each: all within limit (or shed, each counted: then no key).
    assert {status for status, _ in answers} - {503} == {200}

    client = redis.Redis(port=redis_server.port)

    def limiter_keys() -> list[bytes]:
        """The rate-limit keys (the control plane's top counts, under
        pp:{pp-admin}, live an hour by design)."""
        return [k for k in client.scan_iter(count=5000) if not k.startswith(b"pp:{pp-admin}")]

    names = limiter_keys()
    # A key lives T = 10 s from its request: every client answered within the 9 s
    # before the scan ended (1 s for the request's own latency) must still have one.
    scan_end = time.monotonic()
    recent = sum(
        1 for status, when in answers if status == 200 and when > scan_end - (period / rate - 1)
    )
    assert recent > 0
    assert len(names) >= recent, (len(names), recent)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.pttl(name)
    ttls = pipe.execute()
    # -1 is a key without a TTL; -2 one that expired between SCAN and PTTL.
    assert -1 not in ttls, collections.Counter(ttl for ttl in ttls if ttl < 0)
    assert max(ttls) <= period * 1000  # burst x T: the real client's key
    wait_until(lambda: not limiter_keys(), period + 5, 0.5)
    expired_after = time.monotonic() - started - elapsed
    client.close()

    admitted = sum(s.status == 200 for s in real.samples)
    span = real.samples[-1].end - real.samples[0].start
    assert {s.status for s in real.samples} - {503} == {200, 429}
    flooded = [status for status, _ in warm + answers]
    shed = assert_shed_counted(flooded + [s.status for s in real.samples], [server.url])
    assert admitted <= rate + int(span / (period / rate)), (admitted, span)
    growth_mib = (rss_after - rss_before) / 1024
    assert growth_mib < 8, (rss_before, rss_after)
    report(
        "redis_key_flood_50k",
        keys=keys,
        seconds=round(elapsed, 1),
        keys_seen_at_end=len(names),
        max_pttl_ms=max(ttls),
        all_expired_after_s=round(expired_after, 1),
        server_rss_kib=(rss_before, rss_after),
        real_client_admitted=admitted,
        real_client_requests=len(real.samples),
        shed=shed,
    )
