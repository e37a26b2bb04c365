"""The limits a policy may declare: what the deciders compute exactly.

GCRA adds burst x interval to the clock; the sliding window weighs two
windows' counts by the window length; the fixed window forms no product at
all. Each is refused only where its own arithmetic would leave the doubles
the Lua side computes in (exact to 2**53).
"""

from __future__ import annotations

import pytest

from pingpong.core.algorithms import MICROS, Algorithm, Limit
from pingpong.core.rates import Rate
from pingpong.core.storage import Check
from pingpong.core.storage.memory import MemoryStorage

DAY, HOUR, YEAR = 86_400, 3_600, 31_536_000


@pytest.mark.parametrize(
    ("algorithm", "rate"),
    [
        (Algorithm.FIXED_WINDOW, Rate(14_000, DAY)),
        (Algorithm.FIXED_WINDOW, Rate(10**9, YEAR)),
        (Algorithm.SLIDING_WINDOW, Rate(1_000_000, HOUR)),
        (Algorithm.SLIDING_WINDOW, Rate(50_000, DAY)),
    ],
)
def test_window_limits_within_their_arithmetic_are_accepted(
    algorithm: Algorithm, rate: Rate
) -> None:
    limit = Limit(algorithm, rate, rate.count)
    store = MemoryStorage(clock=lambda: 1_790_000_000 * MICROS)
    outcome = store.acquire_now([Check("k", limit, False)])[0]
    assert outcome.admitted and outcome.remaining == rate.count - 1


@pytest.mark.parametrize(
    ("algorithm", "rate", "burst"),
    [
        (Algorithm.GCRA, Rate(1, DAY), 100_000_000),  # burst x interval: ~2**53 us
        (Algorithm.SLIDING_WINDOW, Rate(10**9, DAY), 10**9),  # count x window: ~2**66 us
    ],
)
def test_limits_past_their_arithmetic_are_refused(
    algorithm: Algorithm, rate: Rate, burst: int
) -> None:
    with pytest.raises(ValueError, match="too long a span"):
        Limit(algorithm, rate, burst)
