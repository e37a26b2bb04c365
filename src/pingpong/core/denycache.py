"""The limiter's local memory of "rejected until t", per key.

It only ever rejects, and never past what the storage itself answered, so it
saves the storage a round trip per request of a flooding client without
changing any verdict, as long as it forgets whatever a change invalidates:
a reset or an override of the key (``forget``), an override's expiry (a
rejection under an override never outlasts it: ``remember(..., until_at_most)``),
a reload (a new limiter, a new cache).

Bounded like the memory storage: two generations of plain dicts; once the
young one holds ``max_keys / 2`` keys the old one is dropped whole. Every
operation is O(1) however long a flood goes on (deleting from the front of
one dict leaves holes that ``next(iter(d))`` walks over).
"""

from __future__ import annotations

from collections.abc import Iterable

Entry = tuple[int, int]  # (rejected until, quota whole at), monotonic microseconds


class DenyCache:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._young: dict[str, Entry] = {}
        self._old: dict[str, Entry] = {}
        self._generation = max(max_keys // 2, 1)

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: str, now: int) -> Entry | None:
        """The key's entry while it still rejects; expired ones are dropped."""
        entry = self._young.get(key)
        if entry is None:
            entry = self._old.get(key)
            if entry is None:
                return None
        if entry[0] > now:
            return entry
        self._young.pop(key, None)
        self._old.pop(key, None)
        return None

    def remember(
        self, key: str, now: int, retry_us: int, reset_us: int, until_at_most: int
    ) -> None:
        """Rejected for ``retry_us`` (never past ``until_at_most``)."""
        until = min(now + retry_us, until_at_most)
        if until <= now:
            return
        self._old.pop(key, None)
        self._young[key] = (until, max(now + reset_us, until))
        if len(self._young) >= self._generation:
            self._old, self._young = self._young, {}

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._young.pop(key, None)
            self._old.pop(key, None)

    def clear(self) -> None:
        self._young.clear()
        self._old.clear()
