"""How late this process's event loop runs: the replica's own queueing.

A timer due every ``INTERVAL`` seconds measures how late it fires. The sum of
those delays is time the loop spent on something else (other requests, a
CPU-starved process, a blocking call): time a request waited in this replica,
not in the storage. Two users:

- the storage budget (``core.storage.deadline``): a decision may wait
  ``storage_timeout`` for the storage itself; the time the loop's thread was
  busy or starved of a CPU during the wait is not charged to the storage, so
  an overloaded replica never blames Redis (and never opens its breaker) for
  its own queueing;
- the latency SLI: a request's recorded latency adds the loop's lag at the time
  it was answered (``LOOP_LAG.current``), the queueing it saw before the app ran;
- the load shedder: /ping is answered 503 at once while the lag stands
  (``LOOP_LAG.standing``) above ``max_loop_lag``, what requests wait before
  the app runs (invisible to the in-flight count).

One loop per process (the workers are processes), so one monitor per process:
``LOOP_LAG``, attached to whichever loop runs when it is first used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable

INTERVAL = 0.01  # seconds between ticks: lag shorter than this goes unseen
GRAIN = 0.001  # uvloop's timers fire to the millisecond: lateness below is no lag


class LoopLag:
    """Ticks on the running loop and sums how late each tick fired."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.observers: list[Callable[[float], None]] = []  # each tick's lag, seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._total = 0.0
        self._last = 0.0
        self._previous = 0.0  # the tick's before the last
        self._schedstat: int | None = None

    def ensure_started(self) -> None:
        """Tick on the running loop (a new loop, e.g. in tests, starts afresh)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop, self._total, self._last, self._previous = loop, 0.0, 0.0, 0.0
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
        self._previous, self._last = self._last, lag
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
        or the overdue one's if it is later. Nothing when the monitor ticks
        on another loop (a test's earlier one): its lateness is not this one's."""
        if self._loop is not asyncio.get_running_loop():
            return 0.0
        return max(self._last, self._overdue())

    def standing(self) -> float:
        """The lag two ticks in a row saw at least (the overdue one counts as
        the latest): a queue that stays, as under overload or a starved CPU,
        not one pause (a GC, a descheduled thread, a blocking call) that the
        next turn clears. What the load shedder acts on."""
        if self._loop is not asyncio.get_running_loop():
            return 0.0
        overdue = self._overdue()
        if overdue > 0:
            return min(self._last, overdue)
        return min(self._previous, self._last)

    def busy(self) -> float:
        """Seconds the loop's thread has run or waited for a CPU so far: not
        asleep waiting for a socket. From the kernel's scheduler statistics
        (run time plus run-queue delay: other requests' work, a noisy
        neighbour, a container's CPU quota); the thread's CPU time where /proc
        does not tell. Call it from the loop's thread."""
        if self._schedstat is not None:
            with contextlib.suppress(OSError, IndexError, ValueError):
                ran, waited = os.pread(self._schedstat, 64, 0).split()[:2]
                return (int(ran) + int(waited)) / 1e9
        return time.thread_time()

    def mark(self) -> tuple[float, float]:
        """Where this replica's own clocks stand: for ``replica_since``."""
        return self.total(), self.busy()

    def replica_since(self, mark: tuple[float, float]) -> float:
        """Seconds of this replica's own doing since ``mark``: its thread busy
        (or starved of a CPU), or the loop's lag, whichever saw more. The rest
        of a wait the thread slept on its sockets: the storage's time."""
        return max(self.total() - mark[0], self.busy() - mark[1])


LOOP_LAG = LoopLag()


def _open_schedstat() -> int | None:
    """This thread's scheduler statistics (Linux), kept open: a pread costs ~5 us."""
    try:
        return os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
    except OSError:
        return None
