"""In-process storage: a bounded dict of per-key states."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pingpong.core.algorithms import Outcome, State, expires_at
from pingpong.core.storage.base import Check


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryStorage:
    """Keeps states in insertion order, re-inserting on every update, so the
    front of the dict holds the least recently used keys.

    Each new key sweeps up to two expired keys off the front, which keeps the
    table near the live key set without a background task; past ``max_keys``
    the least recently used key is evicted even if not expired (its client
    briefly gets a fresh quota; ``evictions`` counts how often).
    """

    name = "memory"
    shared = False

    def __init__(self, max_keys: int = 2_000_000, clock: Callable[[], int] = monotonic_us) -> None:
        self._table: dict[str, State] = {}
        self._max_keys = max_keys
        self._clock = clock
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._table)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        return self.acquire_now(checks)

    def acquire_now(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self._clock()
        table = self._table
        outcomes: list[Outcome] = []
        updates: list[tuple[str, State]] = []
        blocked = False
        for key, limit, shadow in checks:
            outcome, new_state = limit.decide(table.get(key), now)
            outcomes.append(outcome)
            if new_state is not None:
                updates.append((key, new_state))
            elif not shadow:
                blocked = True
        if not blocked:
            for key, new_state in updates:
                if table.pop(key, None) is None:
                    self._make_room(now)
                table[key] = new_state
        return outcomes

    def _make_room(self, now: int) -> None:
        table = self._table
        for _ in range(2):
            oldest = next(iter(table), None)
            if oldest is None:
                return
            if expires_at(table[oldest]) <= now:
                del table[oldest]
            elif len(table) >= self._max_keys:
                del table[oldest]
                self.evictions += 1
            else:
                return

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
