"""The Lua script against a real redis-server."""

from __future__ import annotations

import asyncio
import time

import pytest

from pingpong.core.algorithms import Algorithm, Limit, Outcome
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, Storage, StorageOptions
from pingpong.core.storage.memory import MemoryStorage
from pingpong.core.storage.redis.standalone import RedisStorage, redis_key
from pingpong_toolkit.redis import RedisServer

pytestmark = pytest.mark.asyncio


async def burst(storage: Storage, checks: list[Check], n: int) -> list[list[Outcome]]:
    return await asyncio.gather(*(storage.acquire(checks) for _ in range(n)))


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_same_answers_as_the_python_algorithms(
    redis_server: RedisServer, algorithm: Algorithm
) -> None:
    """A burst decided in one batch (one Redis clock reading) must match the
    in-memory implementation request for request."""
    storage = RedisStorage.from_url(redis_server.url, StorageOptions(timeout=1.0))
    memory = MemoryStorage(clock=lambda: 10**15)  # one instant, like one Redis batch
    try:
        for rate, burst_size in [(Rate(5, 10), 5), (Rate(3, 1), 7), (Rate(50, 60), 10)]:
            limit = Limit(algorithm, rate, burst_size)
            checks = [Check(f"eq-{rate.count}-{burst_size}:a", limit, False)]
            remote = [o[0] for o in await burst(storage, checks, 12)]
            local = [memory.acquire_now(checks)[0] for _ in range(12)]
            assert [(o.admitted, o.remaining) for o in remote] == [
                (o.admitted, o.remaining) for o in local
            ]
            if algorithm is Algorithm.GCRA:  # GCRA's times do not depend on the clock phase
                assert [(o.reset_us, o.retry_us) for o in remote] == [
                    (o.reset_us, o.retry_us) for o in local
                ]
    finally:
        await storage.aclose()


async def test_all_or_nothing_and_shadow(redis_server: RedisServer) -> None:
    storage = RedisStorage.from_url(redis_server.url, StorageOptions(timeout=1.0))
    roomy = Limit(Algorithm.GCRA, Rate(100, 60), 100)
    tight = Limit(Algorithm.FIXED_WINDOW, Rate(2, 60), 2)
    shadow = Limit(Algorithm.GCRA, Rate(1, 60), 1)
    checks = [
        Check("roomy:x", roomy, False),
        Check("tight:x", tight, False),
        Check("sh:x", shadow, True),
    ]
    try:
        results = [await storage.acquire(checks) for _ in range(6)]
    finally:
        await storage.aclose()
    assert [r[1].admitted for r in results] == [True, True, False, False, False, False]
    assert [r[2].admitted for r in results][:2] == [True, False]  # shadow rejects, nothing blocks
    # The roomy policy was charged only for the two admitted requests.
    assert results[-1][0].remaining == 97
    assert redis_server.cli("GET", redis_key("roomy:x")).startswith(roomy.tag + ":")


async def test_keys_are_hash_tagged_with_ttl(redis_server: RedisServer) -> None:
    storage = RedisStorage.from_url(redis_server.url, StorageOptions(timeout=1.0))
    try:
        for algorithm in Algorithm:
            limit = Limit(algorithm, Rate(10, 3600), 10)  # a window too long to end mid-test
            await storage.acquire([Check(f"ttl-{algorithm}:1.2.3.4", limit, False)])
    finally:
        await storage.aclose()
    keys = sorted(redis_server.cli("KEYS", "*").split())
    assert keys == sorted(f"pp:{{ttl-{a}:1.2.3.4}}" for a in Algorithm)
    for key in keys:
        ttl = int(redis_server.cli("PTTL", key))
        assert 0 < ttl <= 2 * 3600_000
    assert redis_server.cli("TYPE", redis_key("ttl-gcra:1.2.3.4")) == "string"  # one small value


async def test_script_is_called_by_sha_in_batches(redis_server: RedisServer) -> None:
    storage = RedisStorage.from_url(redis_server.url, StorageOptions(timeout=1.0))
    limit = Limit(Algorithm.GCRA, Rate(1000, 1), 1000)
    try:
        await burst(storage, [Check("batch:a", limit, False)], 200)
    finally:
        await storage.aclose()
    stats = redis_server.cli("INFO", "commandstats")
    evalsha = next(line for line in stats.splitlines() if line.startswith("cmdstat_evalsha:"))
    calls = int(evalsha.split("calls=")[1].split(",")[0])
    assert 1 <= calls <= 3, stats  # 200 concurrent decisions, one round trip (two on first load)
    assert "cmdstat_eval:" not in stats


async def test_retry_after_is_honest_against_redis(redis_server: RedisServer) -> None:
    storage = RedisStorage.from_url(redis_server.url, StorageOptions(timeout=1.0))
    try:
        for algorithm in Algorithm:
            limit = Limit(algorithm, Rate(4, 1), 2)
            checks = [Check(f"retry-{algorithm}:a", limit, False)]
            outcome = None
            for _ in range(10):
                (outcome,) = await storage.acquire(checks)
                if not outcome.admitted:
                    break
            assert outcome is not None and not outcome.admitted
            await asyncio.sleep(outcome.retry_us / 1e6 + 0.002)
            (after,) = await storage.acquire(checks)
            assert after.admitted, algorithm
    finally:
        await storage.aclose()


async def test_replicas_sharing_redis_admit_no_more_than_one(redis_server: RedisServer) -> None:
    """Three independent clients (three replicas) race on one key."""
    replicas = [
        RedisStorage.from_url(redis_server.url, StorageOptions(timeout=2.0)) for _ in range(3)
    ]
    limit = Limit(Algorithm.GCRA, Rate(100, 60), 100)
    checks = [Check("shared:client", limit, False)]
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(replica.acquire(checks) for _ in range(400) for replica in replicas)
        )
    finally:
        for replica in replicas:
            await replica.aclose()
    elapsed_us = int((time.monotonic() - started) * 1e6)
    admitted = sum(r[0].admitted for r in results)
    assert 100 <= admitted <= 100 + elapsed_us // limit.interval_us


async def test_unreachable_redis_raises_a_storage_error_quickly() -> None:
    from pingpong.core.storage import StorageError

    storage = RedisStorage.from_url("redis://127.0.0.1:1/0", StorageOptions(timeout=0.05))
    started = time.monotonic()
    with pytest.raises(StorageError):
        await storage.acquire([Check("x:y", Limit(Algorithm.GCRA, Rate(1, 1), 1), False)])
    assert time.monotonic() - started < 1.0
    await storage.aclose()
