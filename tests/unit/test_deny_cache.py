"""The deny cache follows every change that can invalidate it, and stays O(1)."""

from __future__ import annotations

import asyncio
import time

from pingpong.core.denycache import DenyCache
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.overrides import Override
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate
from tests.unit.rsgi import FakeHeaders
from tests.unit.test_limiter import SharedMemory, gcra

CLIENT = "203.0.113.9"


def limiter(policy_rate: tuple[int, int]) -> tuple[Limiter, SharedMemory]:
    storage = SharedMemory()
    policy = Policy("default", gcra(*policy_rate))
    return Limiter(Rules([policy]), storage), storage


async def admitted(limiter: Limiter) -> bool:
    return (await limiter.check("/ping", "GET", CLIENT, FakeHeaders())).admitted


def override(rate: Rate, burst: int, seconds: float) -> Override:
    return Override("default", CLIENT, rate, burst, time.time() + seconds)


async def test_a_rejection_under_an_override_ends_with_the_override() -> None:
    """1/hour for 0.3 s: once it expires, the policy's 100/minute applies,
    on the replica that rejected as on any other."""
    limits, storage = limiter((100, 60))
    limits.set_overrides([override(Rate(1, 3600), 1, 0.3)])
    assert await admitted(limits)
    assert not await admitted(limits)  # rejected, remembered for ~3600 s
    calls = storage.calls
    assert not await admitted(limits)
    assert storage.calls == calls  # the deny cache answered
    await asyncio.sleep(0.35)
    assert await admitted(limits)


async def test_an_override_set_or_removed_is_asked_of_the_storage_again() -> None:
    limits, _ = limiter((1, 60))
    assert await admitted(limits)
    assert not await admitted(limits)  # remembered for ~60 s
    limits.set_overrides([override(Rate(1000, 60), 100, 3600)])
    assert await admitted(limits)  # looser now: not the cached rejection
    limits.set_overrides([override(Rate(1, 3600), 1, 3600)])
    assert not await admitted(limits)
    limits.set_overrides([])  # removed: back to 1/minute, which the state exhausted
    assert not await admitted(limits)


async def test_a_reset_is_asked_of_the_storage_again() -> None:
    limits, storage = limiter((1, 60))
    assert await admitted(limits)
    assert not await admitted(limits)
    await storage.reset(["default:" + CLIENT])
    limits.forget(["default:" + CLIENT])
    assert await admitted(limits)


def test_the_cache_is_bounded_and_keeps_its_recent_keys() -> None:
    cache = DenyCache(max_keys=1_000)
    now = 10**12
    for n in range(300_000):
        cache.remember(f"k{n}", now, 60 * 10**6, 60 * 10**6, 2**62)
        assert len(cache) <= 1_000
    assert cache.get("k299999", now) is not None
    assert cache.get("k0", now) is None  # dropped with its generation
    assert cache.get("k299999", now + 61 * 10**6) is None  # expired
