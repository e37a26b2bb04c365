"""The admin store on Redis: overrides in a hash (+ a sorted set of expiry
times), a change counter with a bounded log of the keys changed, a pub/sub
channel that says "something changed", and per-minute sorted sets of
rejection counts. Every key carries the hash tag ``{pp-admin}``: on a Cluster
they share one slot, so the Lua scripts may touch them together.

Every call goes through ``answer_within``, as the limiter's do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pingpong.core.heavy_hitters import MAX_PER_BUCKET, bucket_of, buckets_for
from pingpong.core.overrides import Override, OverrideLimitReached
from pingpong.core.storage.admin import CHANGE_LOG, Changes
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
    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client
        self._timeout = max(timeout, 1.0)  # operator calls, not the hot path
        self._put = client.register_script(PUT)
        self._delete = client.register_script(DELETE)
        self._announce = client.register_script(ANNOUNCE)

    async def put_override(self, override: Override, now: float, bound: int) -> Override | None:
        args = (override.full_key, override.to_json(), override.expires_at, now, bound)
        async with answer_within(self._timeout):
            stored, old = await self._put(keys=[OVERRIDES, EXPIRY], args=args)
        if int(stored) == 0:
            raise OverrideLimitReached(f"at most {bound} overrides")
        return Override.from_json(old) if old else None

    async def delete_override(self, full_key: str, now: float) -> Override | None:
        async with answer_within(self._timeout):
            old = await self._delete(keys=[OVERRIDES, EXPIRY], args=[full_key])
        found = Override.from_json(old) if old else None
        return found if found is not None and found.expires_at > now else None

    async def overrides(self, now: float) -> list[Override]:
        async with answer_within(self._timeout):
            raw = await self._client.hvals(OVERRIDES)
        found = (Override.from_json(value) for value in raw)
        return [o for o in found if o is not None and o.expires_at > now]

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
            seq = int(raw_seq or 0)
            if seq == since:
                return None
            entries = await self._client.lrange(LOG, 0, CHANGE_LOG - 1) if since is not None else []
        if since is None:
            return Changes(seq, [], True)  # a new replica has no deny cache to clear
        if seq < since:  # the storage was emptied (or replaced): start over
            return Changes(seq, [], False)
        keys, oldest = [], seq + 1
        for entry in entries:
            number, _, key = _text(entry).partition(" ")
            if int(number) <= since:
                break
            keys.append(key)
            oldest = int(number)
        # Complete when the log reaches back to the first change we missed.
        complete = oldest <= since + 1 or len(entries) < CHANGE_LOG
        return Changes(seq, keys, complete)

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
        return [{_text(member): float(score) for member, score in rows} for rows in answers]

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
