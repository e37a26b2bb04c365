"""Policy changes with traffic in between (reload, restart with another
algorithm, rate, burst or window): never an error, never over the guarantee of
the policy in force, never a wait longer than that policy allows, and never a
fresh quota for a client that had used its own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong.core.algorithms import MICROS, Algorithm, Limit, Outcome
from pingpong.core.rates import Rate
from pingpong.core.storage import Check
from pingpong.core.storage.memory import MemoryStorage

limits = st.builds(
    lambda algorithm, count, period, burst: Limit(algorithm, Rate(count, period), burst or count),
    st.sampled_from(list(Algorithm)),
    st.integers(1, 20),
    st.sampled_from([1, 2, 5, 10, 60, 3600]),
    st.one_of(st.none(), st.integers(1, 30)),
)
# Gaps between requests: mostly bursts, sometimes long pauses.
gaps = st.lists(st.sampled_from([0, 1, 1000, 50_000, 300_000, MICROS, 7 * MICROS]), max_size=40)


def max_wait_us(limit: Limit) -> int:
    """The longest Retry-After the policy can give on its own."""
    if limit.algorithm is Algorithm.GCRA:
        return limit.interval_us
    if limit.algorithm is Algorithm.FIXED_WINDOW:
        return limit.interval_us
    return 2 * limit.interval_us


def bound(limit: Limit, start: int, end: int) -> int:
    """The policy's guarantee over [start, end]: GCRA B + floor(L/T); the
    windows N per aligned window touched."""
    if limit.algorithm is Algorithm.GCRA:
        return limit.capacity + (end - start) // limit.interval_us
    windows = end // limit.interval_us - start // limit.interval_us + 1
    return limit.capacity * windows


class Clock:
    def __init__(self) -> None:
        self.now = 10**15  # a Redis-like epoch in microseconds

    def __call__(self) -> int:
        return self.now


def check_segment(
    store: MemoryStorage, clock: Clock, limit: Limit, segment_gaps: list[int]
) -> list[Outcome]:
    start = clock.now
    outcomes = []
    for gap in segment_gaps:
        clock.now += gap
        outcome = store.acquire_now([Check("p:c", limit, False)])[0]
        if not outcome.admitted:
            assert 0 < outcome.retry_us <= max_wait_us(limit)
            assert outcome.reset_us >= outcome.retry_us
        assert 0 <= outcome.remaining <= limit.capacity
        outcomes.append(outcome)
    admitted = sum(o.admitted for o in outcomes)
    assert admitted <= bound(limit, start, clock.now)
    return outcomes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(limits, gaps), min_size=2, max_size=6))
def test_random_policy_changes_keep_every_promise(segments: list[tuple[Limit, list[int]]]) -> None:
    clock = Clock()
    store = MemoryStorage(clock=clock)
    for limit, segment_gaps in segments:
        check_segment(store, clock, limit, segment_gaps)


@settings(max_examples=200, deadline=None)
@given(limits, limits)
def test_an_exhausted_client_gets_no_fresh_quota_from_a_change(old: Limit, new: Limit) -> None:
    """Right after a change, the requests the old policy still counted are
    carried: the client gets at most what the new quota leaves."""
    clock = Clock()
    clock.now -= clock.now % (3600 * MICROS)  # at a window start: nothing slides out at once
    store = MemoryStorage(clock=clock)
    used = sum(store.acquire_now([Check("p:c", old, False)])[0].admitted for _ in range(50))
    assert used == old.capacity
    fresh = sum(store.acquire_now([Check("p:c", new, False)])[0].admitted for _ in range(50))
    assert fresh <= max(new.capacity - used, 0) + 1  # +1: GCRA's own emission interval


def test_loosening_gcra_frees_a_throttled_client_at_once() -> None:
    """1/minute -> 100/second: the client waits for the new policy, not the old one."""
    clock = Clock()
    store = MemoryStorage(clock=clock)
    strict = Limit(Algorithm.GCRA, Rate(1, 60), 1)
    store.acquire_now([Check("p:c", strict, False)])
    assert not store.acquire_now([Check("p:c", strict, False)])[0].admitted
    loose = Limit(Algorithm.GCRA, Rate(100, 1), 100)
    outcome = store.acquire_now([Check("p:c", loose, False)])[0]
    assert outcome.admitted and outcome.remaining == 98


def test_a_longer_sliding_window_keeps_the_count() -> None:
    """sliding 3/minute -> 3/hour: the three requests still count."""
    clock = Clock()
    clock.now -= clock.now % (3600 * MICROS)
    store = MemoryStorage(clock=clock)
    minute = Limit(Algorithm.SLIDING_WINDOW, Rate(3, 60), 3)
    hour = Limit(Algorithm.SLIDING_WINDOW, Rate(3, 3600), 3)
    assert all(store.acquire_now([Check("p:c", minute, False)])[0].admitted for _ in range(3))
    clock.now += 61 * MICROS
    assert not store.acquire_now([Check("p:c", hour, False)])[0].admitted
