from __future__ import annotations

import tracemalloc

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.rates import Rate
from pingpong.core.storage import Check
from pingpong.core.storage.memory import MemoryStorage


class Clock:
    def __init__(self) -> None:
        self.now = 10**12

    def __call__(self) -> int:
        return self.now


def test_a_rejected_request_consumes_nothing_anywhere() -> None:
    clock = Clock()
    store = MemoryStorage(clock=clock)
    roomy = Limit(Algorithm.GCRA, Rate(100, 60), 100)
    tight = Limit(Algorithm.FIXED_WINDOW, Rate(1, 60), 1)
    checks = [Check("roomy:a", roomy, False), Check("tight:a", tight, False)]
    assert all(o.admitted for o in store.acquire_now(checks))
    for _ in range(5):
        outcomes = store.acquire_now(checks)
        assert outcomes[0].admitted and not outcomes[1].admitted
    # Only the first, admitted request was counted by the roomy policy.
    assert store.acquire_now([Check("roomy:a", roomy, False)])[0].remaining == 98


def test_shadow_rejection_does_not_block() -> None:
    store = MemoryStorage(clock=Clock())
    one = Limit(Algorithm.GCRA, Rate(1, 60), 1)
    checks = [
        Check("shadow:a", one, True),
        Check("real:a", Limit(Algorithm.GCRA, Rate(9, 60), 9), False),
    ]
    store.acquire_now(checks)
    shadow, real = store.acquire_now(checks)
    assert not shadow.admitted and real.admitted


def test_the_table_is_capped_and_active_keys_survive_a_flood() -> None:
    clock = Clock()
    store = MemoryStorage(max_keys=1000, clock=clock)
    tight = Limit(Algorithm.GCRA, Rate(2, 3600), 2)
    client = [Check("p:real-client", tight, False)]
    flood = Limit(Algorithm.GCRA, Rate(10, 1), 10)
    admitted = 0
    for i in range(20_000):
        store.acquire_now([Check(f"p:flood-{i}", flood, False)])
        if i % 50 == 0:  # the real client keeps trying, and keeps being rejected
            admitted += store.acquire_now(client)[0].admitted
        assert len(store) <= 1000
    assert store.rotations >= 30
    assert admitted == 2  # its state was never the one dropped


def test_idle_keys_are_forgotten_after_a_generation() -> None:
    store = MemoryStorage(max_keys=1000, clock=Clock())
    limit = Limit(Algorithm.GCRA, Rate(1, 3600), 1)
    store.acquire_now([Check("p:idle", limit, False)])
    assert not store.acquire_now([Check("p:idle", limit, False)])[0].admitted
    for i in range(1000):  # two generations of other keys
        store.acquire_now([Check(f"p:{i}", limit, False)])
    assert store.acquire_now([Check("p:idle", limit, False)])[0].admitted  # forgotten


def test_memory_per_key_stays_small() -> None:
    store = MemoryStorage(clock=Clock())
    limit = Limit(Algorithm.GCRA, Rate(100, 60), 100)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(100_000):
        store.acquire_now(
            [Check(f"default:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", limit, False)]
        )
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert used / 100_000 < 200, f"{used / 100_000:.0f} bytes per key"


def test_many_distinct_limits_never_forget_a_throttled_client() -> None:
    """Operators' overrides each bring their own limit: 1,100 of them, used
    once each (past the 1,024 a 10-bit index names), must not cost an exhausted
    client its state, and no state is ever read under another limit."""
    clock = Clock()
    store = MemoryStorage(clock=clock)
    tight = Limit(Algorithm.GCRA, Rate(1, 3600), 1)
    assert store.acquire_now([Check("default:a", tight, False)])[0].admitted
    for n in range(1_100):
        override = Limit(Algorithm.GCRA, Rate(1_000 + n, 60), 10)
        assert store.acquire_now([Check(f"default:o{n}", override, False)])[0].admitted
    assert not store.acquire_now([Check("default:a", tight, False)])[0].admitted
    # The keys written under the last limits are still exact too.
    last = Limit(Algorithm.GCRA, Rate(1_000 + 1_099, 60), 10)
    assert store.acquire_now([Check("default:o1099", last, False)])[0].remaining == 8
