"""The admin store on Redis: overrides in a hash (+ a sorted set of expiry
times), a change counter with a bounded log of the keys changed, a pub/sub
channel that says "something changed", and per-minute sorted sets of
rejection counts. Every key carries the hash tag ``{pp-admin}``: on a Cluster
they share one slot, so the Lua scripts may touch them together.

Every call goes through ``answer_within``, as the limiter's do.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pingpong.core.heavy_hitters import MAX_PER_BUCKET, bucket_of, buckets_for
from pingpong.core.overrides import Override, OverrideLimitReached, check_full_key
from pingpong.core.stats import Stats
from pingpong.core.storage.admin import CHANGE_LOG, Changes, Page, Untrusted, page_of
from pingpong.core.storage.base import StorageError
from pingpong.core.storage.redis.client import answer_within, lua_script

PREFIX = "pp:{pp-admin}:"
OVERRIDES, EXPIRY, SEQ, LOG = (PREFIX + n for n in ("overrides", "expiry", "seq", "log"))
CHANNEL = "pp:pp-admin:changes"
BUCKET_TTL = 3700  # a bucket outlives the longest window

PUT, DELETE, ANNOUNCE = (lua_script(n) for n in ("put_override", "delete_override", "announce"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisAdminStore:
    def __init__(self, client: Any, timeout: float, stats: Stats) -> None:
        self._client = client
        self._timeout = max(timeout, 1.0)  # operator calls, not the hot path
        self._put = client.register_script(PUT)
        self._delete = client.register_script(DELETE)
        self._announce = client.register_script(ANNOUNCE)
        self._untrusted = Untrusted(stats)

    def _override(self, raw: Any, full_key: str | None = None) -> Override | None:
        """The override a stored value holds, or None (counted) if it holds
        anything else; ``full_key``: the hash field it was stored under."""
        if raw is None or raw == b"" or raw == "":
            return None
        try:
            found = Override.from_json(raw)
        except ValueError as exc:
            self._untrusted.skipped("override", f"{full_key}: {exc}")
            return None
        if full_key is not None and found.full_key != full_key:
            self._untrusted.skipped("override", f"{full_key}: it names {found.full_key}")
            return None
        return found

    async def put_overrides(
        self, overrides: Sequence[Override], now: float, bound: int
    ) -> list[Override | None]:
        args: list[Any] = [now, bound, CHANGE_LOG, CHANNEL]
        for override in overrides:
            args += (override.full_key, override.to_json(), override.expires_at)
        async with answer_within(self._timeout):
            answer = await self._put(keys=[OVERRIDES, EXPIRY, SEQ, LOG], args=args)
        if int(answer[0]) == 0:
            raise OverrideLimitReached(f"at most {bound} overrides")
        olds = answer[2:]
        return [self._override(old, o.full_key) for o, old in zip(overrides, olds, strict=True)]

    async def delete_override(self, full_key: str, now: float) -> Override | None:
        async with answer_within(self._timeout):
            old = await self._delete(keys=[OVERRIDES, EXPIRY], args=[full_key])
        found = self._override(old, full_key)
        return found if found is not None and found.expires_at > now else None

    async def overrides(self, now: float) -> list[Override]:
        async with answer_within(self._timeout):
            raw = await self._client.hgetall(OVERRIDES)
        found = (self._override(value, _text(key)) for key, value in raw.items())
        return [o for o in found if o is not None and o.expires_at > now]

    async def overrides_for(self, full_keys: Sequence[str]) -> dict[str, Override | None]:
        if not full_keys:
            return {}
        async with answer_within(self._timeout):
            raw = await self._client.hmget(OVERRIDES, list(full_keys))
        return {key: self._override(value, key) for key, value in zip(full_keys, raw, strict=True)}

    async def page(self, cursor: str, limit: int, now: float) -> Page:
        async with answer_within(self._timeout):
            keys = sorted(_text(k) for k in await self._client.hkeys(OVERRIDES))
        after = keys[bisect_right(keys, cursor) :]
        found = await self.overrides_for(after[:limit])
        return page_of(after, limit, lambda k: _unexpired(found.get(k), now))

    async def announce(self, keys: Sequence[str]) -> int:
        async with answer_within(self._timeout):
            seq = int(await self._announce(keys=[SEQ, LOG], args=[CHANGE_LOG, *keys]))
        try:
            async with answer_within(self._timeout):
                await self._client.publish(CHANNEL, str(seq))
        except StorageError:
            # Best effort: the change is recorded under SEQ, which every replica
            # also polls (an ACL user without channel rights cannot publish).
            pass
        return seq

    async def changes(self, since: int | None) -> Changes | None:
        async with answer_within(self._timeout):
            raw_seq = await self._client.get(SEQ)
        seq = _sequence(raw_seq or b"0")
        if seq is None:
            self._untrusted.skipped("change counter", repr(raw_seq)[:40])
            return None  # nothing can be announced either until it is a number again
        if seq == since:
            return None
        if since is None:
            return Changes(seq, [], True)  # a new replica reads every override anyway
        if seq < since:  # the storage was emptied (or replaced): start over
            return Changes(seq, [], False)
        # One entry per change announced since (one key each), and the one
        # before them: read only those, and the rest of the log only if that
        # did not reach back far enough.
        wanted = min(seq - since + 1, CHANGE_LOG)
        keys, reached = await self._entries_after(since, 0, wanted)
        if not reached and wanted < CHANGE_LOG:
            more, reached = await self._entries_after(since, wanted, CHANGE_LOG)
            keys += more
        return Changes(seq, keys, reached)

    async def _entries_after(self, since: int, start: int, stop: int) -> tuple[list[str], bool]:
        """The keys of log entries ``start`` to ``stop`` (newest first) numbered
        after ``since``, and whether they reach back to an entry at or before
        ``since`` (else the log may have lost some)."""
        async with answer_within(self._timeout):
            entries = await self._client.lrange(LOG, start, stop - 1)
        keys: list[str] = []
        for entry in entries:
            number, _, key = _text(entry).partition(" ")
            seq = _sequence(number)
            try:
                if seq is None:
                    raise ValueError("not <sequence number> <key>")
                check_full_key(key)
            except ValueError as exc:
                self._untrusted.skipped("change log entry", f"{exc}: {_text(entry)[:80]!r}")
                continue
            if seq <= since:
                return keys, True
            keys.append(key)
        return keys, len(entries) < stop - start  # a log never trimmed holds every change

    async def add_rejections(self, counts: Mapping[str, int], now: float) -> None:
        if not counts:
            return
        key = PREFIX + f"top:{bucket_of(now)}"
        async with answer_within(self._timeout):
            pipe = self._client.pipeline(transaction=False)
            for member, count in counts.items():
                pipe.zincrby(key, count, member)
            pipe.expire(key, BUCKET_TTL)
            pipe.zremrangebyrank(key, 0, -(MAX_PER_BUCKET + 1))
            await pipe.execute()

    async def rejections(self, window: int, now: float) -> list[dict[str, float]]:
        async with answer_within(self._timeout):
            pipe = self._client.pipeline(transaction=False)
            for bucket in buckets_for(window, now):
                pipe.zrange(PREFIX + f"top:{bucket}", 0, -1, withscores=True)
            answers = await pipe.execute()
        return [self._counts(rows) for rows in answers]

    def _counts(self, rows: list[tuple[Any, Any]]) -> dict[str, float]:
        counts = {}
        for member, score in rows:
            key, count = _text(member), float(score)
            try:
                check_full_key(key)
                if not (math.isfinite(count) and 0 <= count <= 2**53):
                    raise ValueError(f"count {count} of {key}")
            except ValueError as exc:
                self._untrusted.skipped("rejection count", exc)
                continue
            counts[key] = count
        return counts

    async def listen(self, changed: Callable[[], None]) -> None:
        """Subscribe and call ``changed`` per message; on a failure, wait a
        second and subscribe again (the poll covers the gap). A Cluster client
        has no pub/sub in redis-py's asyncio API: return, and poll."""
        if not hasattr(self._client, "pubsub"):
            return
        while True:
            pubsub = self._client.pubsub()
            try:
                async with answer_within(self._timeout):
                    await pubsub.subscribe(CHANNEL)
                changed()  # anything announced while we were not subscribed
                while True:
                    async with answer_within(self._timeout + 1.0):
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                    if message is not None:
                        changed()
            except StorageError:
                await asyncio.sleep(1.0)
            finally:
                try:
                    async with answer_within(1.0):
                        await pubsub.aclose()
                except StorageError:
                    pass


def _sequence(text: Any) -> int | None:
    """A change number as Redis INCR writes it (ASCII digits), else None."""
    value = _text(text)
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _unexpired(override: Override | None, now: float) -> Override | None:
    return override if override is not None and override.expires_at > now else None
