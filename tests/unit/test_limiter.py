"""The limiter in process: all-or-nothing, shadow, tiers, the deny cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pingpong.core.algorithms import Algorithm, Limit, Outcome
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.overrides import Override
from pingpong.core.policy import GLOBAL, Policy, Tier, key_digest
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, StorageOptions
from pingpong.core.storage.base import Resilience
from pingpong.core.storage.memory import MemoryStorage
from pingpong.service import Counters
from tests.unit.rsgi import FakeHeaders

NO_HEADERS = FakeHeaders()


def gcra(count: int, period: int, burst: int | None = None) -> Limit:
    return Limit(Algorithm.GCRA, Rate(count, period), burst or count)


class SharedMemory:
    """A memory store that says it is shared, so the limiter uses its deny
    cache; counts the calls that reach it."""

    name = "shared-memory"
    shared = True
    acquire_now = None
    acquire_one_now = None

    def __init__(self) -> None:
        self.memory = MemoryStorage()
        self.calls = 0

    def configure(self, resilience: Resilience, options: StorageOptions) -> None:
        return None

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        self.calls += 1
        return self.memory.acquire_now(checks)

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        return await self.memory.peek(checks)

    async def reset(self, keys: Sequence[str]) -> int:
        return await self.memory.reset(keys)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_every_policy_must_admit_and_a_rejection_consumes_nothing() -> None:
    counters = Counters()
    limiter = Limiter(
        Rules([Policy("roomy", gcra(10, 60)), Policy("tight", gcra(1, 60))]),
        MemoryStorage(),
        stats=counters,
    )
    first = await limiter.check("/ping", "GET", "1.2.3.4", NO_HEADERS)
    second = await limiter.check("/ping", "GET", "1.2.3.4", NO_HEADERS)
    assert first.admitted and not second.admitted
    assert [r.policy.name for r in second.reported] == ["tight"]
    assert counters.decisions == {("roomy", "allowed"): 1, ("tight", "allowed"): 1,
                                  ("tight", "limited"): 1}  # fmt: skip


async def test_shadow_policies_count_but_never_reject() -> None:
    counters = Counters()
    limiter = Limiter(
        Rules([Policy("shadow", gcra(1, 60), shadow=True)]), MemoryStorage(), stats=counters
    )
    decisions = [await limiter.check("/ping", "GET", "c", NO_HEADERS) for _ in range(3)]
    assert all(d.admitted for d in decisions)
    assert counters.decisions[("shadow", "shadow_limited")] == 2


async def test_a_known_api_key_replaces_the_client_policies_by_its_tier() -> None:
    tier = Tier("gold", gcra(5, 60), frozenset({key_digest("k1")}))
    limiter = Limiter(
        Rules(
            [Policy("per-client", gcra(1, 60)), Policy("all", gcra(100, 60), key=GLOBAL)],
            tiers=[tier],
        ),
        MemoryStorage(),
    )
    keyed = FakeHeaders([("x-api-key", "k1")])
    decisions = [await limiter.check("/ping", "GET", "c", keyed) for _ in range(5)]
    assert all(d.admitted for d in decisions)
    assert [r.policy.name for r in decisions[0].reported] == ["gold", "all"]
    unknown = FakeHeaders([("x-api-key", "nope")])
    assert (await limiter.check("/ping", "GET", "c", unknown)).admitted
    assert not (await limiter.check("/ping", "GET", "c", unknown)).admitted


async def test_the_deny_cache_answers_like_the_storage_and_can_be_told_to_forget() -> None:
    storage = SharedMemory()
    limiter = Limiter(Rules([Policy("p", gcra(2, 60))]), storage)  # t = 60 s, retry 30 s
    for _ in range(2):
        await limiter.check("/ping", "GET", "c", NO_HEADERS)
    from_storage = await limiter.check("/ping", "GET", "c", NO_HEADERS)
    calls = storage.calls
    from_cache = await limiter.check("/ping", "GET", "c", NO_HEADERS)
    assert storage.calls == calls  # answered without the storage
    assert not from_storage.admitted and not from_cache.admitted
    storage_t = from_storage.reported[0].outcome.reset_us
    cache_t = from_cache.reported[0].outcome.reset_us
    assert 0 <= storage_t - cache_t < 1_000_000  # the same t, give or take the time between
    assert cache_t > from_cache.reported[0].outcome.retry_us
    limiter.forget(["p:c"])
    await limiter.check("/ping", "GET", "c", NO_HEADERS)
    assert storage.calls == calls + 1


async def test_a_swap_changes_the_rules_at_once_and_keeps_the_overrides() -> None:
    storage = SharedMemory()
    limiter = Limiter(Rules([Policy("p", gcra(1, 60))]), storage)
    limiter.set_overrides([Override("p", "vip", Rate(3, 60), None, time.time() + 60)])
    assert (await limiter.check("/ping", "GET", "c", NO_HEADERS)).admitted
    assert not (await limiter.check("/ping", "GET", "c", NO_HEADERS)).admitted  # deny cached
    looser = Rules([Policy("p", gcra(5, 60))])
    limiter.swap(looser)
    assert limiter.rules is looser
    # The deny cache went with the old rules: the looser limit frees c at once.
    assert (await limiter.check("/ping", "GET", "c", NO_HEADERS)).admitted
    # The override outlives the swap, as a limit of the new policy.
    assert limiter.limit_for(looser.policies[0], "vip") == gcra(3, 60)
    admitted = [(await limiter.check("/ping", "GET", "vip", NO_HEADERS)).admitted for _ in range(4)]
    assert admitted == [True, True, True, False]


async def test_a_decision_in_flight_is_reported_by_the_rules_it_started_with() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    class Slow(SharedMemory):
        async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
            started.set()
            await release.wait()
            return await super().acquire(checks)

    limiter = Limiter(Rules([Policy("old", gcra(1, 60))]), Slow())
    pending = asyncio.create_task(limiter.check("/ping", "GET", "c", NO_HEADERS))
    await started.wait()
    limiter.swap(Rules([Policy("new", gcra(1, 60))]))
    release.set()
    assert [r.policy.name for r in (await pending).reported] == ["old"]
