"""Shares of a limit: n replicas deciding alone never admit more than the policy."""

from __future__ import annotations

import pytest

from pingpong.core.algorithms import MICROS, Algorithm, Limit
from pingpong.core.fleet import Fleet, share_of
from pingpong.core.rates import Rate
from pingpong.core.storage import Check
from pingpong.core.storage.memory import MemoryStorage


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000 * MICROS

    def __call__(self) -> int:
        return self.now


def admitted_by(replicas: int, limit: Limit, seconds: int, step_us: int = 7_000) -> int:
    """Every replica offered one request every ``step_us``, for ``seconds``."""
    clock = Clock()
    stores = [MemoryStorage(clock=clock) for _ in range(replicas)]
    share = share_of(limit, replicas) if replicas > 1 else limit
    admitted = 0
    for _ in range(seconds * MICROS // step_us):
        clock.now += step_us
        for store in stores:
            admitted += store.acquire_now([Check("k", share, False)])[0].admitted
    return admitted


@pytest.mark.parametrize("replicas", [1, 2, 3, 5, 7])
@pytest.mark.parametrize(
    ("algorithm", "rate", "burst"),
    [
        (Algorithm.GCRA, Rate(20, 1), 20),
        (Algorithm.GCRA, Rate(100, 60), 10),
        (Algorithm.FIXED_WINDOW, Rate(30, 2), 30),
        (Algorithm.SLIDING_WINDOW, Rate(30, 2), 30),
    ],
)
def test_the_shares_of_a_fleet_sum_to_the_policy_at_most(
    replicas: int, algorithm: Algorithm, rate: Rate, burst: int
) -> None:
    limit = Limit(algorithm, rate, burst)
    seconds = 6
    admitted = admitted_by(replicas, limit, seconds)
    if algorithm is Algorithm.GCRA:
        bound = max(burst, replicas) + seconds * MICROS // limit.interval_us
    else:  # at most N per aligned window; the span covers seconds / period + 1 of them
        bound = rate.count * (seconds // rate.period + 1)
        if algorithm is Algorithm.FIXED_WINDOW:
            bound = rate.count * (seconds // rate.period)
    assert admitted <= bound, (admitted, bound)
    assert admitted >= 0.8 * bound - burst  # a share, not a trickle


def test_the_count_keeps_the_last_seen_and_its_floor() -> None:
    fleet = Fleet(floor=2)
    assert fleet.count == 2  # nothing heard yet: the floor
    fleet.saw(5)
    assert fleet.count == 5
    limit = Limit(Algorithm.GCRA, Rate(20, 1), 20)
    share = fleet.share(limit)
    assert (share.burst, share.interval_us) == (4, 5 * limit.interval_us)
    assert fleet.share(limit) is share  # computed once per (limit, count)
    fleet.saw(1)
    assert fleet.count == 2
