"""Rate-limiting algorithms as pure functions over integer microseconds.

Each function takes the stored state of one key (``None`` when the key is new or
expired) and the current time, and returns the outcome plus the state to store
if the request is admitted (``None`` when rejected: a rejection never changes
state). Keeping them pure lets the in-memory store, the local fallback and the
property tests share one implementation; ``storage/lua/decide.lua`` mirrors it
for Redis and a test checks that the two agree.

Integers (not floats) keep boundaries exact: a fake clock at an exact multiple of
the emission interval must admit exactly what the guarantee allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from pingpong.core.rates import Rate

MICROS = 1_000_000

# State shapes: GCRA stores its theoretical arrival time (TAT); the window
# algorithms store tuples whose first item is the time the state expires.
State = int | tuple[int, int] | tuple[int, int, int]


class Algorithm(StrEnum):
    GCRA = "gcra"
    SLIDING_WINDOW = "sliding-window"
    FIXED_WINDOW = "fixed-window"


class Outcome(NamedTuple):
    """One key's verdict. Times are microseconds from now."""

    admitted: bool
    remaining: int
    reset_us: int
    retry_us: int


Decide = Callable[["Limit", State | None, int], tuple[Outcome, State | None]]


@dataclass(frozen=True, slots=True)
class Limit:
    """A rate compiled for one algorithm.

    ``interval_us`` is GCRA's emission interval (rounded up, so rounding can only
    make the limiter stricter) or the window length; ``capacity`` is GCRA's
    burst or the window's request count.
    """

    algorithm: Algorithm
    rate: Rate
    burst: int
    interval_us: int = field(init=False)
    capacity: int = field(init=False)

    def __post_init__(self) -> None:
        period_us = self.rate.period * MICROS
        if self.algorithm is Algorithm.GCRA:
            interval, capacity = -(-period_us // self.rate.count), self.burst
        else:
            interval, capacity = period_us, self.rate.count
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "capacity", capacity)

    def decide(self, state: State | None, now: int) -> tuple[Outcome, State | None]:
        return _DECIDERS[self.algorithm](self, state, now)


def gcra(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """Generic cell rate algorithm: admits when TAT - burst*T <= now."""
    interval = limit.interval_us
    tat = state if isinstance(state, int) and state > now else now
    new_tat = tat + interval
    allow_at = new_tat - limit.capacity * interval
    if now < allow_at:
        return Outcome(False, 0, tat - now, allow_at - now), None
    return Outcome(True, (now - allow_at) // interval, new_tat - now, 0), new_tat


def fixed_window(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """At most ``capacity`` requests per window aligned to the epoch."""
    window = limit.interval_us
    if isinstance(state, tuple) and state[0] > now:
        end, count = state[0], state[1]
    else:
        end, count = now - now % window + window, 0
    if count >= limit.capacity:
        return Outcome(False, 0, end - now, end - now), None
    count += 1
    return Outcome(True, limit.capacity - count, end - now, 0), (end, count)


def sliding_window(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """Cloudflare's sliding-window counter: the previous window's count, weighted
    by how much of it still overlaps the sliding window, plus the current count.

    Products are scaled by the window length so the comparison stays in integers.
    """
    window, capacity = limit.interval_us, limit.capacity
    start = now - now % window
    prev = cur = 0
    if isinstance(state, tuple):
        state_start = state[0] - 2 * window
        if state_start == start:
            prev, cur = state[1], state[2]  # type: ignore[misc]
        elif state_start + window == start:
            prev = state[2]  # type: ignore[misc]
    elapsed = now - start
    used = prev * (window - elapsed) + cur * window
    if used + window > capacity * window:
        return Outcome(False, 0, window - elapsed, _sliding_retry(limit, prev, cur, elapsed)), None
    cur += 1
    remaining = (capacity * window - used - window) // window
    return Outcome(True, remaining, window - elapsed, 0), (start + 2 * window, prev, cur)


def _sliding_retry(limit: Limit, prev: int, cur: int, elapsed: int) -> int:
    """Microseconds until one more request fits, if no other request arrives."""
    window, capacity = limit.interval_us, limit.capacity
    if cur + 1 <= capacity and prev > 0:
        # Still this window: need prev*(window-e) <= (capacity-cur-1)*window.
        earliest = window - ((capacity - cur - 1) * window) // prev
        if earliest < window:
            return earliest - elapsed
    # Next window: the current count becomes the previous one.
    earliest_next = window - ((capacity - 1) * window) // cur if cur else 0
    return window - elapsed + max(earliest_next, 0)


_DECIDERS: dict[Algorithm, Decide] = {
    Algorithm.GCRA: gcra,
    Algorithm.SLIDING_WINDOW: sliding_window,
    Algorithm.FIXED_WINDOW: fixed_window,
}
