"""In-process storage: per-key states in two generations of plain dicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from pingpong.core.algorithms import Algorithm, Limit, Outcome, State, gcra_tat
from pingpong.core.stats import Stats
from pingpong.core.storage.admin import MemoryAdminStore
from pingpong.core.storage.base import Check, Opened, Resilience, StorageOptions

# What the table holds per key: a GCRA state packed into one int, or a window
# algorithm's state tuple as it is.
Stored = int | State
LIMIT_BITS = 10  # a packed GCRA state: TAT << 10 | the index of its limit
LIMIT_MASK = (1 << LIMIT_BITS) - 1
GCRA = Algorithm.GCRA


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class LimitIndex:
    """Small numbers for the limits states were written under, so that a GCRA
    state costs one int (32 bytes) instead of a (limit, TAT) tuple (+56 bytes):
    the difference between ~160 and ~220 bytes a key.

    The index holds at most ``1 << LIMIT_BITS`` limits (reloads and operators'
    overrides bring new ones); past that a state keeps its limit in a tuple,
    so no key is ever forgotten for want of a number."""

    def __init__(self) -> None:
        self.limits: list[Limit] = []
        self.indexes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.limits)

    def index(self, limit: Limit) -> int | None:
        found = self.indexes.get(limit.tag)
        if found is None and len(self.limits) < 1 << LIMIT_BITS:
            found = self.indexes[limit.tag] = len(self.limits)
            self.limits.append(limit)
        return found

    def known(self, limit: Limit) -> int | None:
        """The index of ``limit`` if a state was ever written under it."""
        return self.indexes.get(limit.tag)

    def unpack(self, stored: Stored | None) -> State | None:
        if isinstance(stored, int):
            return (self.limits[stored & LIMIT_MASK], stored >> LIMIT_BITS)
        return stored

    def pack(self, state: State) -> Stored:
        if len(state) == 2 and isinstance(state[1], int):
            index = self.index(state[0])
            if index is not None:
                return state[1] << LIMIT_BITS | index
        return state


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
        self._young: dict[str, Stored] = {}
        self._old: dict[str, Stored] = {}
        self._limits = LimitIndex()
        self._known = self._limits.indexes  # tag -> index, read per request
        self._generation = max(max_keys // 2, 1)
        self._clock = clock
        self.rotations = 0

    @classmethod
    def check_url(cls, url: str) -> None:
        check_memory_url(url)

    @classmethod
    def open(
        cls, url: str, options: StorageOptions, resilience: Resilience, stats: Stats
    ) -> Opened:
        """One process, so nothing can fail and nothing is shared."""
        cls.check_url(url)
        return Opened(cls(max_keys=options.memory_max_keys), MemoryAdminStore())

    def resize(self, max_keys: int) -> None:
        """A new bound (on reload); it takes effect at the next rotation."""
        self._generation = max(max_keys // 2, 1)

    def configure(self, resilience: Resilience, options: StorageOptions) -> None:
        self.resize(options.memory_max_keys)

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        return self.acquire_now(checks)

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self._clock()
        unpack = self._limits.unpack
        return [limit.decide(unpack(self._get(key)), now)[0] for key, limit, _ in checks]

    async def reset(self, keys: Sequence[str]) -> int:
        found = 0
        for key in keys:
            found += (self._young.pop(key, None) or self._old.pop(key, None)) is not None
        return found

    def _get(self, key: str) -> Stored | None:
        state = self._young.get(key)
        return state if state is not None else self._old.get(key)

    def acquire_now(self, checks: Sequence[Check]) -> list[Outcome]:
        if len(checks) == 1:  # one check: shadow or not, a rejection changes nothing
            key, limit, _ = checks[0]
            return [self.acquire_one_now(key, limit)]
        return self._acquire_all(checks)

    def acquire_one_now(self, key: str, limit: Limit) -> Outcome:
        """The common request, one GCRA check, on the packed TAT without state
        tuples (``_take`` and the rotation written out: this runs per request).
        A state written under another limit goes through ``_acquire_all``,
        which translates it."""
        index = self._known.get(limit.tag)
        young = self._young
        stored = young.get(key)
        if stored is None and self._old:
            stored = self._take(key)
        if (
            index is None
            or limit.algorithm is not GCRA
            or (
                stored is not None and (not isinstance(stored, int) or stored & LIMIT_MASK != index)
            )
        ):
            return self._acquire_all((Check(key, limit, False),))[0]
        now = self._clock()
        outcome, new_tat = gcra_tat(limit, now if stored is None else stored >> LIMIT_BITS, now)
        if new_tat is not None:
            young[key] = new_tat << LIMIT_BITS | index
        if len(young) >= self._generation:
            self._rotate_when_full()
        return outcome

    def _take(self, key: str) -> Stored | None:
        """The key's state, moved into the young generation if it was in the old."""
        stored = self._young.get(key)
        if stored is None and self._old:
            stored = self._old.pop(key, None)
            if stored is not None:
                self._young[key] = stored
        return stored

    def _acquire_all(self, checks: Sequence[Check]) -> list[Outcome]:
        now = self._clock()
        limits = self._limits
        outcomes: list[Outcome] = []
        updates: list[tuple[str, State]] = []
        blocked = False
        for key, limit, shadow in checks:
            outcome, new_state = limit.decide(limits.unpack(self._take(key)), now)
            outcomes.append(outcome)
            if new_state is not None:
                updates.append((key, new_state))
            elif not shadow:
                blocked = True
        if not blocked:
            young = self._young
            for key, new_state in updates:
                young[key] = limits.pack(new_state)
        self._rotate_when_full()
        return outcomes

    def _rotate_when_full(self) -> None:
        if len(self._young) >= self._generation:
            self._old, self._young = self._young, {}
            self.rotations += 1

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def check_memory_url(url: str) -> None:
    if url != "memory://":
        raise ValueError("memory storage takes no host or options: use memory://")
