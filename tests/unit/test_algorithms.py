"""Each algorithm's stated guarantee, checked on random traffic with a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong.core.algorithms import MICROS, Algorithm, Limit, State
from pingpong.core.rates import Rate

rates = st.builds(Rate, st.integers(1, 20), st.integers(1, 30))
gaps = st.lists(st.integers(0, 3 * MICROS), min_size=1, max_size=120)


def run(limit: Limit, arrivals: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
    """Admitted times, and (time, retry) of each rejection."""
    state: State | None = None
    admitted, rejected = [], []
    for now in arrivals:
        outcome, new_state = limit.decide(state, now)
        if outcome.admitted:
            assert new_state is not None
            state = new_state
            admitted.append(now)
        else:
            assert new_state is None
            rejected.append((now, outcome.retry_us))
    return admitted, rejected


def times(start: int, deltas: list[int]) -> list[int]:
    out, now = [], start
    for delta in deltas:
        now += delta
        out.append(now)
    return out


@settings(max_examples=300)
@given(rates, st.integers(1, 30), gaps, st.integers(0, 10**12))
def test_gcra_never_exceeds_burst_plus_rate(
    rate: Rate, burst: int, deltas: list[int], t0: int
) -> None:
    limit = Limit(Algorithm.GCRA, rate, burst)
    admitted, _ = run(limit, times(t0, deltas))
    for i, first in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - first
            assert j - i + 1 <= burst + span // limit.interval_us


@settings(max_examples=300)
@given(rates, st.integers(1, 30), gaps, st.integers(0, 10**12))
def test_retry_after_is_honest(rate: Rate, burst: int, deltas: list[int], t0: int) -> None:
    for algorithm in Algorithm:
        limit = Limit(algorithm, rate, burst)
        arrivals = times(t0, deltas)
        state: State | None = None
        for now in arrivals:
            outcome, new_state = limit.decide(state, now)
            if outcome.admitted:
                state = new_state
                continue
            assert outcome.retry_us > 0
            later, _ = limit.decide(state, now + outcome.retry_us)
            assert later.admitted, (algorithm, now, outcome)
            if algorithm is Algorithm.GCRA:  # and it is the earliest moment
                assert not limit.decide(state, now + outcome.retry_us - 1)[0].admitted


def test_gcra_admits_the_burst_at_once_then_one_per_interval() -> None:
    limit = Limit(Algorithm.GCRA, Rate(10, 10), burst=3)
    admitted, _ = run(limit, [0] * 5)
    assert len(admitted) == 3
    assert limit.interval_us == MICROS
    state: State = (limit, 0 + 3 * MICROS)  # TAT after three requests at t=0
    assert not limit.decide(state, MICROS - 1)[0].admitted
    assert limit.decide(state, MICROS)[0].admitted


def test_gcra_remaining_counts_down_and_resets() -> None:
    limit = Limit(Algorithm.GCRA, Rate(5, 10), burst=5)
    state: State | None = None
    remaining = []
    for _ in range(5):
        outcome, state = limit.decide(state, 0)
        remaining.append(outcome.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    assert outcome.reset_us == 10 * MICROS


@settings(max_examples=300)
@given(rates, gaps, st.integers(0, 10**12))
def test_fixed_window_admits_at_most_n_per_aligned_window(
    rate: Rate, deltas: list[int], t0: int
) -> None:
    limit = Limit(Algorithm.FIXED_WINDOW, rate, rate.count)
    admitted, _ = run(limit, times(t0, deltas))
    windows: dict[int, int] = {}
    for t in admitted:
        windows[t // limit.interval_us] = windows.get(t // limit.interval_us, 0) + 1
    assert max(windows.values(), default=0) <= rate.count


@settings(max_examples=300)
@given(rates, gaps, st.integers(0, 10**12))
def test_sliding_window_bound(rate: Rate, deltas: list[int], t0: int) -> None:
    """At most N per aligned window, and at most N + N*L/w in any span L <= w."""
    limit = Limit(Algorithm.SLIDING_WINDOW, rate, rate.count)
    window, n = limit.interval_us, rate.count
    admitted, _ = run(limit, times(t0, deltas))
    for i, first in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - first
            if span <= window:
                assert j - i + 1 <= n + (n * span) // window
            if admitted[j] // window == first // window:
                assert j - i + 1 <= n


def test_sliding_window_smooths_the_boundary_burst() -> None:
    """The peers' fixed window admits 2N around a boundary; this admits ~N."""
    rate = Rate(10, 10)
    sliding = Limit(Algorithm.SLIDING_WINDOW, rate, 10)
    fixed = Limit(Algorithm.FIXED_WINDOW, rate, 10)
    boundary = 1000 * 10 * MICROS
    arrivals = [boundary - 300_000 + k * 30_000 for k in range(20)]  # 20 requests in 0.6 s
    assert len(run(fixed, arrivals)[0]) == 20
    assert len(run(sliding, arrivals)[0]) == 10
