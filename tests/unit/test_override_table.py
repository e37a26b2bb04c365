"""Stored overrides cost a full garbage collection nothing: however many a
replica holds, the collector tracks the same few objects (it walks every
tracked object, so 10,000 overrides as dataclasses made each full collection
tens of milliseconds longer). Counted with ``gc.get_objects()``, which lists
exactly the tracked objects: a count, whatever the machine's speed."""

from __future__ import annotations

import gc
import time

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.override_table import BUILT_LIMITS
from pingpong.core.overrides import Override
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate
from pingpong.core.storage.admin import MemoryAdminStore
from pingpong.core.storage.memory import MemoryStorage

POLICY = Policy("p", Limit(Algorithm.GCRA, Rate(10, 60), 10))
FEW, MANY = 500, 5000
SPARE = 100  # what the interpreter itself may allocate between two counts


def tracked() -> int:
    gc.collect()  # also untracks the tuples that hold only atomics
    return len(gc.get_objects())


def distinct(i: int) -> Override:
    """The worst case: no two overrides share a rate, so no two a limit."""
    return Override("p", f"10.0.{i >> 8}.{i & 255}", Rate(1000 + i, 60), 1 + i % 90,
                    time.time() + 3600, "load test", "alice", time.time())  # fmt: skip


def added_by(count: int) -> int:
    """Tracked objects a limiter holding ``count`` overrides adds, after every
    one was looked up as a check looks it up (building its limit)."""
    limiter = Limiter(Rules([POLICY]), MemoryStorage())
    before = tracked()
    limiter.set_overrides(distinct(i) for i in range(count // 2))  # as a full sync
    for i in range(count // 2, count):  # as changes follow
        limiter.put_override(distinct(i))
    for i in range(count):
        override = distinct(i)
        assert limiter.limit_for(POLICY, override.key) == override.limit_for(POLICY.limit)
    del override
    return tracked() - before


def test_a_limiter_tracks_the_same_objects_for_5000_overrides_as_for_500() -> None:
    added_by(FEW)  # the first run also fills the interpreter's own caches
    few, many = added_by(FEW), added_by(MANY)
    # At most the bounded cache of built limits (a limit and its rate each).
    assert few <= 2 * BUILT_LIMITS + SPARE
    assert many <= 2 * BUILT_LIMITS + SPARE
    assert many - few <= SPARE, f"{(many - few) / (MANY - FEW):.2f} objects per override"


async def test_the_memory_admin_store_keeps_its_overrides_untracked() -> None:
    store = MemoryAdminStore()
    before = tracked()
    for i in range(MANY):
        await store.put_overrides([distinct(i)], time.time(), MANY)
    assert tracked() - before <= SPARE
    seventh = distinct(7)
    [found] = (await store.overrides_for([seventh.full_key])).values()
    assert found is not None
    assert (found.rate, found.burst, found.reason) == (seventh.rate, seventh.burst, seventh.reason)
