"""The storage's time budget for one decision, which charges the storage and not
this replica's own queueing (``core.looplag``): an overloaded replica never
blames Redis, and never opens its breaker, for time its own loop spent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pingpong.core.looplag import LOOP_LAG, LoopLag

# A wait is given up after this long whatever the loop did. Short of it, a
# command already sent is waited for as long as this replica is the one busy:
# its answer has spent quota in the storage, and deciding it again alone would
# admit what the storage may have refused. (A loop busy that long is making
# progress, so the storage answers; a storage that does not leaves the loop
# idle, and the budget runs out.)
OVERLOAD_SECONDS = 5.0
# Loop turns a spent budget waits before it expires: an answer that arrived by
# the deadline is read (uvloop runs due timers before it polls the sockets, so
# a busy loop sees the deadline before the answer that came with it).
GRACE_TURNS = 3


class Overloaded(TimeoutError):
    """The wait ran past its wall-clock cap, mostly in this replica's loop:
    no evidence against the storage."""


@asynccontextmanager
async def storage_deadline(budget: float, lag: LoopLag = LOOP_LAG) -> AsyncIterator[None]:
    """Like ``asyncio.timeout(budget)``, except that the time the loop lagged
    during the wait is not charged to the budget: it raises TimeoutError once
    ``budget`` seconds passed with the loop healthy and the loop has since
    had ``GRACE_TURNS`` turns to read an answer, and ``Overloaded`` once the
    wall-clock wait passes ``OVERLOAD_SECONDS`` first."""
    lag.ensure_started()
    loop = asyncio.get_running_loop()
    started, mark = loop.time(), lag.mark()
    cap = started + max(OVERLOAD_SECONDS, budget)
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
