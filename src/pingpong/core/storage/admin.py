"""The admin store: where the control plane keeps overrides, change
announcements and rejection counts, shared by every replica that shares the
limiter's storage.

Changes are announced with a sequence number and the keys they touched (a
bounded log): a replica that saw sequence ``n`` asks what changed since, and
forgets those keys from its deny cache. A gap in the log (more changes than it
keeps) means "forget everything". Redis also publishes each change, so replicas
learn of it at once; the poll is the fallback.

What a shared store reads back is untrusted (anyone with access to the Redis
can write there): each entry is validated as strictly as an admin request
body, and one that fails is skipped and counted (``Untrusted``), never raised.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from pingpong.core.heavy_hitters import BUCKET_SECONDS, MAX_PER_BUCKET, bucket_of, buckets_for
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.override_table import EXPIRES_AT, Packed, pack, unpack
from pingpong.core.overrides import Override, OverrideLimitReached
from pingpong.core.stats import Stats

log = logging.getLogger("pingpong.control")
CHANGE_LOG = 1000  # announced keys kept for replicas that poll


class Untrusted:
    """Counts what failed validation, and says so in at most one log line a
    minute (a flood of bad entries must not flood the logs)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._lines = LogThrottle(lines=1, period=60.0)

    def skipped(self, what: str, reason: object) -> None:
        self._stats.control_entry_invalid()
        if self._lines.allow():
            log.warning(
                "control plane: skipped an invalid %s read from the storage: %s "
                "(%d more not logged; see pingpong_control_entries_invalid_total)",
                what, str(reason)[:200], self._lines.take_suppressed(),
            )  # fmt: skip


class Page(NamedTuple):
    overrides: list[Override]
    next_cursor: str | None  # None: the last page


class Changes(NamedTuple):
    seq: int
    keys: list[str]
    complete: bool  # False: the log lost some; forget every key


class AdminStore(Protocol):
    async def put_overrides(
        self, overrides: Sequence[Override], now: float, bound: int
    ) -> list[Override | None]:
        """Store and announce ``overrides`` (distinct keys), all or none; return
        the ones they replace. OverrideLimitReached when they would make more
        than ``bound`` (expired ones do not count)."""

    async def delete_override(self, full_key: str, now: float) -> Override | None:
        """Remove one; return it (None: there was none)."""

    async def overrides(self, now: float) -> list[Override]:
        """Every unexpired override."""

    async def overrides_for(self, full_keys: Sequence[str]) -> dict[str, Override | None]:
        """The override of each key (None: it has none): what a replica re-reads
        when the change log names those keys."""

    async def page(self, cursor: str, limit: int, now: float) -> Page:
        """Up to ``limit`` unexpired overrides whose full key sorts after
        ``cursor``, in key order."""

    async def announce(self, keys: Sequence[str]) -> int:
        """Tell every replica that ``keys`` changed; the new sequence number."""

    async def changes(self, since: int | None) -> Changes | None:
        """What changed after ``since`` (None: nothing did)."""

    async def add_rejections(self, counts: Mapping[str, int], now: float) -> None: ...

    async def rejections(self, window: int, now: float) -> list[dict[str, float]]:
        """The rejection counts of the buckets that overlap the window."""

    async def listen(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` whenever a change is announced, until cancelled
        (returns at once when the store cannot push changes: poll then)."""


class MemoryAdminStore:
    """memory:// : one process is the only replica. Overrides are kept packed,
    as the limiter keeps them (objects the garbage collector does not walk)."""

    def __init__(self) -> None:
        self._overrides: dict[str, Packed] = {}
        self._seq = 0
        self._log: list[tuple[int, str]] = []
        self._buckets: dict[int, dict[str, int]] = {}

    def _get(self, full_key: str) -> Override | None:
        found = self._overrides.get(full_key)
        return unpack(found) if found is not None else None

    async def put_overrides(
        self, overrides: Sequence[Override], now: float, bound: int
    ) -> list[Override | None]:
        self._expire(now)
        old = [self._get(o.full_key) for o in overrides]
        added = old.count(None)
        if added and len(self._overrides) + added > bound:
            raise OverrideLimitReached(f"at most {bound} overrides")
        for override in overrides:
            self._overrides[override.full_key] = pack(override)
        await self.announce([o.full_key for o in overrides])
        return old

    async def delete_override(self, full_key: str, now: float) -> Override | None:
        self._expire(now)
        old = self._get(full_key)
        self._overrides.pop(full_key, None)
        return old

    async def overrides(self, now: float) -> list[Override]:
        self._expire(now)
        return [unpack(packed) for packed in self._overrides.values()]

    async def overrides_for(self, full_keys: Sequence[str]) -> dict[str, Override | None]:
        return {key: self._get(key) for key in full_keys}

    async def page(self, cursor: str, limit: int, now: float) -> Page:
        self._expire(now)
        keys = sorted(self._overrides)
        return page_of(keys[bisect_right(keys, cursor) :], limit, self._get)

    def _expire(self, now: float) -> None:
        for key in [k for k, packed in self._overrides.items() if packed[EXPIRES_AT] <= now]:
            del self._overrides[key]

    async def announce(self, keys: Sequence[str]) -> int:
        self._seq += 1
        self._log = [*self._log, *((self._seq, key) for key in keys)][-CHANGE_LOG:]
        return self._seq

    async def changes(self, since: int | None) -> Changes | None:
        if since == self._seq:
            return None
        return Changes(self._seq, [k for seq, k in self._log if since is None or seq > since], True)

    async def add_rejections(self, counts: Mapping[str, int], now: float) -> None:
        current = bucket_of(now)
        for old in [b for b in self._buckets if b < current - 3600 // BUCKET_SECONDS]:
            del self._buckets[old]
        bucket = self._buckets.setdefault(current, {})
        for key, count in counts.items():
            bucket[key] = bucket.get(key, 0) + count
        if len(bucket) > MAX_PER_BUCKET:
            kept = sorted(bucket.items(), key=lambda item: -item[1])[:MAX_PER_BUCKET]
            self._buckets[current] = dict(kept)

    async def rejections(self, window: int, now: float) -> list[dict[str, float]]:
        return [dict(self._buckets[b]) for b in buckets_for(window, now) if b in self._buckets]

    async def listen(self, changed: Callable[[], None]) -> None:
        await asyncio.Event().wait()  # changes are local: nothing to listen to


def page_of(keys: Sequence[str], limit: int, found: Callable[[str], Override | None]) -> Page:
    """The first ``limit`` of ``keys`` (sorted, after the cursor) as a page."""
    chosen = keys[:limit]
    overrides = [o for o in map(found, chosen) if o is not None]
    return Page(overrides, chosen[-1] if len(keys) > limit else None)
