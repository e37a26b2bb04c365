"""How many replicas share the storage, and each one's share of a limit.

Every replica heartbeats in the shared storage (``HEARTBEAT_SECONDS``); the
replicas heard from within ``ALIVE_SECONDS`` are the fleet. While the storage
answers, limits are shared exactly there and the count only matters for what
comes next: during an outage each replica in ``local`` mode enforces its
share of every limit, so that the fleet together stays within the policy.

The rule when the fleet changes: the count follows the heartbeats while the
storage answers; during an outage the last count seen is kept (never below
``floor``). Replicas that stop during an outage make the shares smaller than
they could be (never more than the policy); a replica that starts during an
outage never saw the fleet and takes ``floor``.

A share of ``n``: GCRA's emission interval times ``n`` (rounded up: stricter)
and its burst divided by ``n``, rounded down, at least 1; the window
algorithms divide the window's count likewise. So ``n`` shares never sum above
the policy (a burst or a window's count smaller than ``n`` excepted: each
replica keeps one).
"""

from __future__ import annotations

import secrets

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.rates import Rate

HEARTBEAT_SECONDS = 1.0
ALIVE_SECONDS = 3.0  # a replica missing this long (three heartbeats) has left


class Fleet:
    """This replica's view of the fleet: ``count`` and ``share``."""

    def __init__(self, floor: int = 1, replica: str | None = None) -> None:
        self.replica = replica or secrets.token_hex(8)
        self.floor = max(floor, 1)
        self.seen = 0  # replicas counted by the last heartbeat (0: none answered yet)
        self._shares: dict[tuple[Limit, int], Limit] = {}

    @property
    def count(self) -> int:
        return max(self.seen, self.floor)

    def saw(self, count: int) -> None:
        self.seen = count

    def share(self, limit: Limit) -> Limit:
        """``limit`` as one of ``count`` replicas enforces it alone."""
        count = self.count
        if count == 1:
            return limit
        found = self._shares.get((limit, count))
        if found is None:
            if len(self._shares) > 1024:  # policies are few; reloads must not grow this
                self._shares.clear()
            found = self._shares[(limit, count)] = share_of(limit, count)
        return found


def share_of(limit: Limit, count: int) -> Limit:
    """One of ``count`` equal parts of ``limit``, rounded down (at least 1)."""
    rate = limit.rate
    if limit.algorithm is Algorithm.GCRA:  # the emission interval times count
        return Limit(
            limit.algorithm, Rate(rate.count, rate.period * count), max(limit.burst // count, 1)
        )
    return Limit(limit.algorithm, Rate(max(rate.count // count, 1), rate.period), limit.burst)
