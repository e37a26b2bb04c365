"""Rate-limiting algorithms as pure functions over integer microseconds.

Each decider takes the stored state of one key (``None`` when the key is new or
expired) and the current time, and returns the outcome plus the state to store
if the request is admitted (``None`` when rejected: a rejection never changes
state). Keeping them pure lets the in-memory store, the local fallback and the
property tests share one implementation; ``storage/redis/lua/decide.lua`` mirrors it
for Redis and a test checks that the two agree.

A state remembers the limit it was written under. When the policy changes (a
reload, a restart with another algorithm, rate or window), the old state is
translated, never reused as is: the requests it still counts against the client
are carried into the new algorithm, capped at the new quota. So a policy change
never hands out a fresh quota, and never makes a client wait longer than the
policy now in force allows.

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
# The Lua side computes in doubles, exact to 2**53. GCRA adds burst x interval
# to the clock (~2**51 us since the epoch): that product stays under MAX_SPAN_US.
# The sliding window weighs two windows' counts by the window length (at most
# 2 x count x window): under MAX_WEIGHTED_US. The fixed window forms no product
# (counts up to 10**9, times up to a year ahead), so it needs no bound of its own.
MAX_SPAN_US = 2**50
MAX_WEIGHTED_US = 2**52


def whole_seconds(us: int) -> int:
    """Microseconds as whole seconds, rounded up: waiting that long is enough."""
    return -(-us // MICROS)


def retry_after(retry_us: int) -> int:
    """Whole seconds, rounded up, at least 1: a ``Retry-After`` that is enough."""
    return max(1, whole_seconds(retry_us))


class Algorithm(StrEnum):
    GCRA = "gcra"
    SLIDING_WINDOW = "sliding-window"
    FIXED_WINDOW = "fixed-window"


CODES = {Algorithm.GCRA: 1, Algorithm.SLIDING_WINDOW: 2, Algorithm.FIXED_WINDOW: 3}

# A stored state: the limit it was written under, then the algorithm's values
# (GCRA: TAT; fixed window: end, count; sliding window: end, previous, current).
State = tuple["Limit", int] | tuple["Limit", int, int] | tuple["Limit", int, int, int]


# A NamedTuple's own constructor is a Python function (about 3,000 instructions a
# call, measured with bench.instructions); ``new(Outcome, (...))`` builds the same
# object in C for half that. Used where a request is decided, nowhere else.
new = tuple.__new__


class Outcome(NamedTuple):
    """One key's verdict. Times are microseconds from now: ``reset_us`` until
    the quota is whole again, ``retry_us`` until one more request fits."""

    admitted: bool
    remaining: int
    reset_us: int
    retry_us: int


@dataclass(frozen=True, slots=True)
class Limit:
    """A rate compiled for one algorithm.

    ``interval_us`` is GCRA's emission interval (rounded up, so rounding can only
    make the limiter stricter) or the window length; ``capacity`` is GCRA's
    burst or the window's request count, and is the quota the RateLimit headers
    describe (``remaining`` never exceeds it). ``tag`` names the limit's shape
    in stored state; ``window`` is the seconds it takes to regain the whole quota.
    """

    algorithm: Algorithm
    rate: Rate
    burst: int
    interval_us: int = field(init=False)
    capacity: int = field(init=False)
    tag: str = field(init=False)
    window: int = field(init=False)

    def __post_init__(self) -> None:
        period_us = self.rate.period * MICROS
        if self.algorithm is Algorithm.GCRA:
            interval, capacity = -(-period_us // self.rate.count), self.burst
            window = -(-capacity * self.rate.period // self.rate.count)
        else:
            interval, capacity, window = period_us, self.rate.count, self.rate.period
        if capacity < 1:
            raise ValueError("the burst must be at least 1")
        _check_exact(self.algorithm, capacity, interval)
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "tag", f"{CODES[self.algorithm]},{interval},{capacity}")
        object.__setattr__(self, "window", window)

    def decide(self, state: State | None, now: int) -> tuple[Outcome, State | None]:
        if state is not None and state[0] is not self and state[0].tag != self.tag:
            state = carried(self, usage(state, now), now)
        return _DECIDERS[self.algorithm](self, state, now)


def _check_exact(algorithm: Algorithm, capacity: int, interval: int) -> None:
    """Refuse a limit whose own arithmetic would leave the exact doubles."""
    if algorithm is Algorithm.GCRA and capacity * interval > MAX_SPAN_US:
        raise ValueError(
            f"{capacity} requests x {interval} us is too long a span "
            f"(at most {MAX_SPAN_US} us, about 35 years): lower the burst or the period"
        )
    if algorithm is Algorithm.SLIDING_WINDOW and capacity * interval > MAX_WEIGHTED_US:
        raise ValueError(
            f"{capacity} requests x a {interval} us window is too long a span for the "
            f"sliding window (at most {MAX_WEIGHTED_US} us): lower the count or the window"
        )


def usage(state: State, now: int) -> int:
    """How many requests ``state`` still counts against its key at ``now``,
    read under the limit it was written with."""
    limit = state[0]
    if limit.algorithm is Algorithm.GCRA:
        tat = state[1]
        return -(-(tat - now) // limit.interval_us) if tat > now else 0
    if limit.algorithm is Algorithm.FIXED_WINDOW:
        return state[2] if state[1] > now else 0  # type: ignore[misc]
    window = limit.interval_us
    start = now - now % window
    state_start = state[1] - 2 * window
    elapsed = now - start
    if state_start == start:
        return -(-state[2] * (window - elapsed) // window) + state[3]  # type: ignore[misc]
    if state_start + window == start:
        return -(-state[3] * (window - elapsed) // window)  # type: ignore[misc]
    return 0


def carried(limit: Limit, used: int, now: int) -> State | None:
    """``used`` requests, capped at the quota, as ``limit``'s state at ``now``."""
    used = min(used, limit.capacity)
    if used <= 0:
        return None
    window = limit.interval_us
    if limit.algorithm is Algorithm.GCRA:
        return (limit, now + used * window)
    start = now - now % window
    if limit.algorithm is Algorithm.FIXED_WINDOW:
        return (limit, start + window, used)
    return (limit, start + 2 * window, 0, used)


def gcra(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """Generic cell rate algorithm: admits when TAT - burst*T <= now."""
    outcome, new_tat = gcra_tat(limit, state[1] if state is not None else now, now)
    return outcome, (limit, new_tat) if new_tat is not None else None


def gcra_tat(limit: Limit, tat: int, now: int) -> tuple[Outcome, int | None]:
    """GCRA on a bare TAT (``now`` for a new key): the outcome, and the new TAT
    when admitted. The in-memory table stores GCRA states as TATs and calls
    this directly (no state tuples on its fast path)."""
    interval = limit.interval_us
    if tat < now:
        tat = now
    new_tat = tat + interval
    allow_at = new_tat - limit.capacity * interval
    if now < allow_at:
        return new(Outcome, (False, 0, tat - now, allow_at - now)), None
    return new(Outcome, (True, (now - allow_at) // interval, new_tat - now, 0)), new_tat


def fixed_window(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """At most ``capacity`` requests per window aligned to the epoch."""
    window = limit.interval_us
    if state is not None and state[1] > now:
        end, count = state[1], state[2]  # type: ignore[misc]
    else:
        end, count = now - now % window + window, 0
    if count >= limit.capacity:
        return Outcome(False, 0, end - now, end - now), None
    count += 1
    return Outcome(True, limit.capacity - count, end - now, 0), (limit, end, count)


def sliding_window(limit: Limit, state: State | None, now: int) -> tuple[Outcome, State | None]:
    """Cloudflare's sliding-window counter: the previous window's count, weighted
    by how much of it still overlaps the sliding window, plus the current count.

    Products are scaled by the window length so the comparison stays in integers.
    The quota is whole once the current count has slid out too: at the end of
    the next window (or of this one when only the previous window counted).
    """
    window, capacity = limit.interval_us, limit.capacity
    start = now - now % window
    prev = cur = 0
    if state is not None:
        state_start = state[1] - 2 * window
        if state_start == start:
            prev, cur = state[2], state[3]  # type: ignore[misc]
        elif state_start + window == start:
            prev = state[3]  # type: ignore[misc]
    elapsed = now - start
    used = prev * (window - elapsed) + cur * window
    if used + window > capacity * window:
        reset = 2 * window - elapsed if cur else window - elapsed
        return Outcome(False, 0, reset, _sliding_retry(limit, prev, cur, elapsed)), None
    remaining = (capacity * window - used - window) // window
    new_state = (limit, start + 2 * window, prev, cur + 1)
    return Outcome(True, remaining, 2 * window - elapsed, 0), new_state


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


Decide = Callable[[Limit, State | None, int], tuple[Outcome, State | None]]
_DECIDERS: dict[Algorithm, Decide] = {
    Algorithm.GCRA: gcra,
    Algorithm.SLIDING_WINDOW: sliding_window,
    Algorithm.FIXED_WINDOW: fixed_window,
}
