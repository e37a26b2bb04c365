from __future__ import annotations

import tracemalloc

from pingpong.core.algorithms import MICROS, Algorithm, Limit
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, MemoryStorage


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


def test_idle_keys_are_swept_and_the_table_is_capped() -> None:
    clock = Clock()
    store = MemoryStorage(max_keys=1000, clock=clock)
    limit = Limit(Algorithm.GCRA, Rate(10, 1), 10)  # a key is idle 0.1 s after use
    for i in range(1000):
        store.acquire_now([Check(f"p:{i}", limit, False)])
    assert len(store) == 1000
    clock.now += MICROS
    for i in range(1000, 1500):
        store.acquire_now([Check(f"p:{i}", limit, False)])
    assert len(store) <= 1000 and store.evictions == 0  # expired keys made room
    busy = Limit(Algorithm.GCRA, Rate(1, 3600), 1)
    for i in range(3000):
        store.acquire_now([Check(f"busy:{i}", busy, False)])
    assert len(store) <= 1000 and store.evictions > 0  # capped even when nothing expires


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
