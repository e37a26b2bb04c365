"""In-process storage: per-key states in two generations of plain dicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from pingpong.core.algorithms import Outcome, State
from pingpong.core.storage.base import Check, Storage, StorageOptions


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryStorage:
    """Bounded without per-key bookkeeping: every decision reads a key from the
    young or the old generation and keeps it in the young one (rejected keys
    too, so a throttled client's state is never the one dropped); once the
    young generation holds ``max_keys / 2`` keys, the old one is dropped whole
    and the young one becomes old.

    So memory never exceeds ``max_keys`` entries, a key survives as long as it
    is used once per generation, and only keys idle for a whole generation are
    forgotten: a client forgotten before its state expired gets a fresh quota.
    Plain dicts cost less per key than an LRU (OrderedDict: +60 bytes) and never
    slow down as a flood goes on.
    """

    name = "memory"
    shared = False
    schemes: ClassVar[tuple[str, ...]] = ("memory",)

    def __init__(self, max_keys: int = 1_000_000, clock: Callable[[], int] = monotonic_us) -> None:
        self._young: dict[str, State] = {}
        self._old: dict[str, State] = {}
        self._generation = max(max_keys // 2, 1)
        self._clock = clock
        self.rotations = 0

    @classmethod
    def check_url(cls, url: str) -> None:
        if url != "memory://":
            raise ValueError("memory storage takes no host or options: use memory://")

    @classmethod
    def from_url(cls, url: str, options: StorageOptions) -> Storage:
        cls.check_url(url)
        return cls(max_keys=options.memory_max_keys)

    def resize(self, max_keys: int) -> None:
        """A new bound (on reload); it takes effect at the next rotation."""
        self._generation = max(max_keys // 2, 1)

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        return self.acquire_now(checks)

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self._clock()
        return [limit.decide(self._get(key), now)[0] for key, limit, _ in checks]

    async def reset(self, keys: Sequence[str]) -> int:
        found = 0
        for key in keys:
            found += (self._young.pop(key, None) or self._old.pop(key, None)) is not None
        return found

    def _get(self, key: str) -> State | None:
        state = self._young.get(key)
        return state if state is not None else self._old.get(key)

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
