"""The most-throttled keys: a bounded local count (Misra-Gries), merged into
the storage once a second by the service, summed over time buckets there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BUCKET_SECONDS = 60  # the storage keeps one bounded count per minute
MAX_WINDOW = 3600  # top?window= at most an hour (60 buckets)
MAX_PER_BUCKET = 1000  # keys kept per bucket in the storage


class HeavyHitters:
    """Counts up to ``capacity`` keys. A new key arriving when full decrements
    every count by one instead (dropping those that reach zero): Misra-Gries.
    Each decrement pass removes at least as much count as it costs, so adding
    is O(1) amortized, memory is bounded, and any key seen more than
    total/(capacity+1) times is always kept (its count an underestimate by at
    most that much). Only rejections are counted, never admitted requests.
    """

    __slots__ = ("capacity", "counts")

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.counts: dict[str, int] = {}

    def add(self, key: str) -> None:
        counts = self.counts
        found = counts.get(key)
        if found is not None:
            counts[key] = found + 1
        elif len(counts) < self.capacity:
            counts[key] = 1
        else:
            self.counts = {k: c - 1 for k, c in counts.items() if c > 1}

    def drain(self) -> dict[str, int]:
        """The counts so far; counting starts afresh."""
        counts, self.counts = self.counts, {}
        return counts


def bucket_of(now: float) -> int:
    return int(now // BUCKET_SECONDS)


def buckets_for(window: int, now: float) -> range:
    """The buckets that overlap the last ``window`` seconds."""
    return range(bucket_of(now - window), bucket_of(now) + 1)


def merge_top(
    counts: Iterable[Mapping[str, float]], policy: str | None, limit: int
) -> list[tuple[str, str, int]]:
    """(policy, key, count) of the ``limit`` largest sums, largest first (ties
    by key, so every replica lists them alike)."""
    total: dict[str, float] = {}
    for bucket in counts:
        for full_key, count in bucket.items():
            total[full_key] = total.get(full_key, 0) + count
    rows = []
    for full_key, count in total.items():
        name, _, key = full_key.partition(":")
        if policy is None or name == policy:
            rows.append((name, key, int(count)))
    rows.sort(key=lambda row: (-row[2], row[0], row[1]))
    return rows[:limit]
