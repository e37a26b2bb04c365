"""In-process storage: per-key states in two generations of plain dicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pingpong.core.algorithms import Outcome, State
from pingpong.core.storage.base import Check


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryStorage:
    """Bounded without per-key bookkeeping: every decision reads a key from the
    young or the old generation and keeps it in the young one (rejected keys
    too, so a throttled client's state is never the one dropped); once the
    young generation holds ``max_keys / 2`` keys, the old one is dropped whole
    and the young one becomes old.

    So memory never exceeds ``max_keys`` entries (about 160 bytes each), a key
    survives as long as it is used once per generation, and only keys idle for
    a whole generation are forgotten: a client forgotten before its state
    expired gets a fresh quota. Plain dicts cost less per key than an LRU
    (OrderedDict: +60 bytes) and never slow down as a flood goes on.
    """

    name = "memory"
    shared = False

    def __init__(self, max_keys: int = 1_000_000, clock: Callable[[], int] = monotonic_us) -> None:
        self._young: dict[str, State] = {}
        self._old: dict[str, State] = {}
        self._generation = max(max_keys // 2, 1)
        self._clock = clock
        self.rotations = 0

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        return self.acquire_now(checks)

    def acquire_now(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self._clock()
        young, old = self._young, self._old
        outcomes: list[Outcome] = []
        updates: list[tuple[str, State]] = []
        blocked = False
        for key, limit, shadow in checks:
            state = young.get(key)
            if state is None and old:
                state = old.pop(key, None)
                if state is not None:
                    young[key] = state
            outcome, new_state = limit.decide(state, now)
            outcomes.append(outcome)
            if new_state is not None:
                updates.append((key, new_state))
            elif not shadow:
                blocked = True
        if not blocked:
            for key, new_state in updates:
                young[key] = new_state
        if len(young) >= self._generation:
            self._old, self._young = young, {}
            self.rotations += 1
        return outcomes

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
