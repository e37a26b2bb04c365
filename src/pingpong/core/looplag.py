"""How late this process's event loop runs: the replica's own queueing.

A timer due every ``INTERVAL`` seconds measures how late it fires. The sum of
those delays is time the loop spent on something else (other requests, a
CPU-starved process, a blocking call): time a request waited in this replica,
not in the storage. Two users:

- the storage budget (``storage_deadline``): a decision may wait
  ``storage_timeout`` for the storage itself; the loop's lag during the wait is
  not charged to the storage, so an overloaded replica never blames Redis (and
  never opens its breaker) for its own queueing;
- the latency SLI: a request's recorded latency adds the loop's lag at the time
  it was answered (``LOOP_LAG.current``), the queueing it saw before the app ran.

One loop per process (the workers are processes), so one monitor per process:
``LOOP_LAG``, attached to whichever loop runs when it is first used.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

INTERVAL = 0.01  # seconds between ticks: lag shorter than this goes unseen
GRAIN = 0.001  # uvloop's timers fire to the millisecond: lateness below is no lag
OVERLOAD_FACTOR = 20  # a wait longer than this many budgets (and 1 s) is given up
# Loop turns a spent budget waits before it expires: an answer that arrived by
# the deadline is read (uvloop runs due timers before it polls the sockets, so
# a busy loop sees the deadline before the answer that came with it).
GRACE_TURNS = 3


class LoopLag:
    """Ticks on the running loop and sums how late each tick fired."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.observers: list[Callable[[float], None]] = []  # each tick's lag, seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._total = 0.0
        self._last = 0.0
        self._schedstat: int | None = None

    def ensure_started(self) -> None:
        """Tick on the running loop (a new loop, e.g. in tests, starts afresh)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop, self._total, self._last = loop, 0.0, 0.0
        if self._schedstat is not None:
            os.close(self._schedstat)
        self._schedstat = _open_schedstat()
        self._due = loop.time() + self.interval
        loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        lag = max(0.0, now - self._due - GRAIN)
        self._total += lag
        self._last = lag
        for observe in self.observers:
            observe(lag)
        self._due = now + self.interval
        self._loop.call_at(self._due, self._tick)

    def _overdue(self) -> float:
        """How late the tick due now already is (not yet counted)."""
        if self._loop is None:
            return 0.0
        return max(0.0, self._loop.time() - self._due - GRAIN)

    def total(self) -> float:
        """Seconds of lag so far, the overdue tick included."""
        return self._total + self._overdue()

    def current(self) -> float:
        """The lag a callback scheduled now is likely to wait: the last tick's,
        or the overdue one's if it is later."""
        return max(self._last, self._overdue())

    def starved(self) -> float:
        """Seconds the loop's thread has waited for a CPU so far (the kernel's
        run-queue delay: a noisy neighbour, a container's CPU quota); 0 where
        /proc does not tell."""
        if self._schedstat is None:
            return 0.0
        try:
            return int(os.pread(self._schedstat, 64, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0

    def mark(self) -> tuple[float, float]:
        """Where this replica's own clocks stand: for ``replica_since``."""
        return self.total(), self.starved()

    def replica_since(self, mark: tuple[float, float]) -> float:
        """Seconds of this replica's own waiting since ``mark``: the loop's lag
        or its thread's wait for a CPU, whichever saw more (both count some of
        the same time)."""
        return max(self.total() - mark[0], self.starved() - mark[1])


LOOP_LAG = LoopLag()


class Overloaded(TimeoutError):
    """The wait ran past its wall-clock cap, mostly in this replica's loop:
    no evidence against the storage."""


def _open_schedstat() -> int | None:
    """This thread's scheduler statistics (Linux), kept open: a pread costs ~5 us."""
    try:
        return os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
    except OSError:
        return None


@asynccontextmanager
async def storage_deadline(budget: float, lag: LoopLag = LOOP_LAG) -> AsyncIterator[None]:
    """Like ``asyncio.timeout(budget)``, except that the time the loop lagged
    during the wait is not charged to the budget: it raises TimeoutError once
    ``budget`` seconds passed with the loop healthy and the loop has since
    had ``GRACE_TURNS`` turns to read an answer, and ``Overloaded`` once the
    wall-clock wait passes ``max(1 s, OVERLOAD_FACTOR x budget)`` first."""
    lag.ensure_started()
    loop = asyncio.get_running_loop()
    started, mark = loop.time(), lag.mark()
    cap = started + max(1.0, OVERLOAD_FACTOR * budget)
    overloaded = False
    handle: asyncio.Handle | None = None
    try:
        async with asyncio.timeout(None) as timeout:

            def check(turns: int = 0) -> None:
                nonlocal handle, overloaded
                now = loop.time()
                spent = now - started - lag.replica_since(mark)
                if spent < budget and now < cap:
                    handle = loop.call_at(min(now + budget - spent, cap), check)
                elif turns < GRACE_TURNS:  # let the loop read what arrived meanwhile
                    handle = loop.call_soon(check, turns + 1)
                else:
                    overloaded = spent < budget
                    timeout.reschedule(now)

            handle = loop.call_at(started + budget, check)
            try:
                yield
            finally:
                handle.cancel()
    except TimeoutError:
        if overloaded:
            raise Overloaded(f"waited {loop.time() - started:.3f} s, mostly in this loop") from None
        raise
