"""ResilientStorage in each failure mode, and its settings applied on reload.

The primary here is a real Redis client pointed at a closed port (connection
refused at once), so every failure goes through the real error translation.
"""

from __future__ import annotations

import asyncio

import pytest

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, StorageError, StorageOptions
from pingpong.core.storage.base import FailureMode, Resilience
from pingpong.core.storage.redis.standalone import RedisStorage
from pingpong.core.storage.resilient import ResilientStorage, StorageUnavailable, Unthrottled
from pingpong.http.responses import PolicyResponses
from pingpong.service import Counters
from pingpong_toolkit.ports import free_port
from tests.unit.rsgi import FakeHeaders

CHECKS = [Check("p:c", Limit(Algorithm.GCRA, Rate(2, 60), 2), False)]


def down(
    mode: FailureMode, failures: int = 3, reset: float = 60.0
) -> tuple[ResilientStorage, Counters]:
    options = StorageOptions(timeout=0.5)
    primary = RedisStorage.from_url(f"redis://127.0.0.1:{free_port()}/0", options)
    assert isinstance(primary, RedisStorage)
    counters = Counters()
    return ResilientStorage(primary, Resilience(mode, failures, reset), stats=counters), counters


async def test_allow_admits_everything_and_reports_no_quota() -> None:
    """Nothing is counted while the storage is down: the limiter admits with
    no policy reported, so no RateLimit header claims a quota (r=4;t=0 did)."""
    storage, counters = down(FailureMode.ALLOW)
    limiter = Limiter(Rules([Policy("default", CHECKS[0].limit)]), storage)
    for _ in range(5):
        decision = await limiter.check("/ping", "GET", "203.0.113.9", FakeHeaders())
        assert decision.admitted and decision.reported == ()
    assert counters.fallbacks["allow"] == 5
    assert PolicyResponses([]).ratelimit_headers(decision.reported) == []


async def test_deny_refuses() -> None:
    storage, _ = down(FailureMode.DENY)
    with pytest.raises(StorageUnavailable):
        await storage.acquire(CHECKS)


async def test_local_keeps_throttling_in_process() -> None:
    storage, _ = down(FailureMode.LOCAL)
    outcomes = [(await storage.acquire(CHECKS))[0] for _ in range(3)]
    assert [o.admitted for o in outcomes] == [True, True, False]


@pytest.mark.parametrize("failures", [1, 3, 7])
async def test_the_breaker_opens_after_circuit_failures(failures: int) -> None:
    storage, counters = down(FailureMode.ALLOW, failures=failures)
    for _ in range(failures + 5):
        with pytest.raises(Unthrottled):
            await storage.acquire(CHECKS)
    assert storage.circuit_open
    assert sum(counters.storage_errors.values()) == failures  # then Redis is left alone
    assert counters.circuit_open["redis"] == 1


async def test_reload_applies_mode_and_breaker_in_place() -> None:
    storage, _ = down(FailureMode.ALLOW, failures=100)
    with pytest.raises(Unthrottled):
        await storage.acquire(CHECKS)
    storage.configure(Resilience(FailureMode.DENY, 2, 60.0), StorageOptions(timeout=0.5))
    with pytest.raises(StorageUnavailable):
        await storage.acquire(CHECKS)
    assert storage.circuit_open  # two failures in all now open it


async def test_a_reload_moves_the_fleets_floor_in_place() -> None:
    """Redis down from the start: the replica never saw the fleet, so it divides
    by ``fleet_min_replicas``, which a reload changes without a restart."""
    storage, _ = down(FailureMode.LOCAL)
    assert storage.fleet.count == 1
    storage.configure(Resilience(FailureMode.LOCAL, 3, 60.0, 4), StorageOptions(timeout=0.5))
    assert storage.fleet.count == 4
    checks = [Check("p:f", Limit(Algorithm.GCRA, Rate(8, 60), 8), False)]
    admitted = [(await storage.acquire(checks))[0].admitted for _ in range(8)]
    assert admitted.count(True) == 2  # a quarter of the burst of 8


class Overloaded:
    """A primary whose every call was lost in the replica's own loop."""

    name, shared = "redis", True

    async def acquire(self, checks: object) -> list[object]:
        raise StorageError("redis: this replica overloaded", "overload")


async def test_an_overloaded_replica_never_opens_the_breaker() -> None:
    counters = Counters()
    storage = ResilientStorage(
        Overloaded(),  # type: ignore[arg-type]
        Resilience(FailureMode.LOCAL, 3, 60.0),
        stats=counters,
    )
    for _ in range(10):
        await storage.acquire(CHECKS)
    assert not storage.circuit_open
    assert counters.storage_errors[("redis", "overload")] == 10


class OneSlowBatch:
    """A primary whose concurrent decisions were one call (one batch) that
    timed out: every request gets the same error."""

    name, shared = "redis", True

    def __init__(self) -> None:
        self.error = StorageError("redis: no answer within 0.05s", "timeout")

    async def acquire(self, checks: object) -> list[object]:
        raise self.error


async def test_one_failed_call_is_one_failure_however_many_it_decided() -> None:
    """Nineteen requests batched into one EVALSHA that timed out are one piece
    of evidence against the storage, not nineteen: the breaker (3) stays closed
    until three calls failed."""
    primary = OneSlowBatch()
    storage = ResilientStorage(
        primary,  # type: ignore[arg-type]
        Resilience(FailureMode.LOCAL, 3, 60.0),
    )
    await asyncio.gather(*(storage.acquire(CHECKS) for _ in range(19)))
    assert not storage.circuit_open
    primary.error = StorageError("redis: no answer within 0.05s", "timeout")
    await storage.acquire(CHECKS)
    assert not storage.circuit_open
    primary.error = StorageError("redis: no answer within 0.05s", "timeout")
    await storage.acquire(CHECKS)
    assert storage.circuit_open
