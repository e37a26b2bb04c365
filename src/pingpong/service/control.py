"""The control plane: inspect, reset and override any client's limit, and list
the most-throttled keys, on every replica that shares the storage.

A change is written to the storage and announced there (Redis: a change
counter, a bounded log of the keys changed, and a pub/sub message). Each
replica syncs on the message, or every ``POLL_SECONDS`` when pub/sub is
down: it forgets the changed keys from its deny cache and re-reads the
overrides. Every change is one audit log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pingpong.core.algorithms import Algorithm, Limit, Outcome, retry_after, whole_seconds
from pingpong.core.clientip import ClientResolver, parse_address
from pingpong.core.heavy_hitters import MAX_WINDOW, merge_top
from pingpong.core.limiter import Limiter
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.overrides import MAX_OVERRIDES, Override, check_full_key, check_key
from pingpong.core.policy import API_KEY, CLIENT_IP, GLOBAL, Policy
from pingpong.core.storage.admin import AdminStore
from pingpong.core.storage.base import Check, Storage, StorageError
from pingpong.service.override_request import OverrideRequest

log = logging.getLogger("pingpong.control")
audit = logging.getLogger("pingpong.audit")
POLL_SECONDS = 0.5  # the fallback when no change is pushed
COALESCE_SECONDS = 0.05  # changes announced this close together are read in one sync
FLUSH_SECONDS = 1.0  # rejection counts merged into the storage this often
PRUNE_EVERY = 60  # flushes between two sweeps of the expired overrides
PAGE, MAX_PAGE = 100, 1000  # overrides listed per page: by default, at most


class ControlRequestError(Exception):
    """A request the control plane refuses as malformed (a bad key, address or
    window): the caller's mistake, unlike any other exception, which is a bug."""


class InvalidBatch(ControlRequestError):
    """An item of a batch is refused (named by its index): nothing was stored."""


class UnknownPolicy(LookupError):
    pass


class NoSuchOverride(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: the admin token's name and the request id, for the audit."""

    token: str
    request_id: str


class ControlPlane:
    """Built from the parts it drives: the limiter (its rules, overrides and
    deny cache), the storage (client state), the admin store (what replicas
    share) and the current client resolver (replaced on reload)."""

    def __init__(
        self,
        limiter: Limiter,
        storage: Storage,
        admin_store: AdminStore,
        resolver: Callable[[], ClientResolver],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._storage = storage
        self.admin_store = admin_store
        self._resolver = resolver
        self._clock = clock
        self._seq: int | None = None
        self._wake = asyncio.Event()
        self._errors = LogThrottle(lines=1, period=10.0)

    # What the HTTP layer asks.

    def policy(self, name: str) -> Policy:
        found = self._limiter.rules.policy(name)
        if found is None:
            raise UnknownPolicy(f"no policy {name!r} is running")
        return found

    def key_for(self, name: str, text: str) -> str:
        """The key policy ``name`` counts a client at address ``text`` by."""
        policy = self.policy(name)
        address = parse_address(text)
        if address is None:
            raise ControlRequestError(f"not an IP address: {text!r}")
        if policy.key == GLOBAL:
            return "*"
        if policy.key == API_KEY:
            raise ControlRequestError(f"policy {policy.name!r} counts API keys, not addresses")
        identity = self._resolver().identity(address)
        return identity if policy.key == CLIENT_IP else "ip=" + identity

    async def inspect(self, name: str, key: str) -> dict[str, Any]:
        policy, key = self.policy(name), _client_key(key)
        limit = self._limiter.limit_for(policy, key)
        full = f"{name}:{key}"
        [outcome] = await self._storage.peek([Check(full, limit, False)])
        remaining = outcome.remaining + 1 if outcome.admitted else 0
        return {
            "policy": name,
            "key": key,
            **describe_limit(limit),
            "remaining": remaining,
            "reset_seconds": whole_seconds(_reset_before(limit, outcome, remaining)),
            "retry_after_seconds": 0 if outcome.admitted else retry_after(outcome.retry_us),
            "override": self._current(full),
        }

    async def reset(self, name: str, key: str, actor: Actor) -> dict[str, Any]:
        self.policy(name)
        key = _client_key(key)
        full = f"{name}:{key}"
        before = await self.inspect(name, key)
        found = await self._storage.reset([full])
        await self._changed(full)
        self._audit(actor, "reset", name, key, before, None)
        return {"policy": name, "key": key, "reset": True, "had_state": found > 0}

    async def put_override(
        self, name: str, key: str, request: OverrideRequest, actor: Actor
    ) -> dict[str, Any]:
        override = self._new_override(name, key, request, actor, self._clock())
        [stored] = await self._store([override], actor)
        return stored

    async def put_overrides(
        self, items: Sequence[tuple[str, str, OverrideRequest]], actor: Actor
    ) -> list[dict[str, Any]]:
        """Several ``(policy, key, request)`` at once, all or none: one storage
        call, one audit line each. InvalidBatch names the first item refused."""
        now, overrides, seen = self._clock(), [], set()
        for i, (name, key, request) in enumerate(items):
            try:
                override = self._new_override(name, key, request, actor, now)
            except (UnknownPolicy, ControlRequestError) as exc:
                raise InvalidBatch(f"overrides[{i}]: {exc}") from None
            if override.full_key in seen:
                raise InvalidBatch(f"overrides[{i}]: {override.full_key} is named twice")
            seen.add(override.full_key)
            overrides.append(override)
        return await self._store(overrides, actor)

    def _new_override(
        self, name: str, key: str, request: OverrideRequest, actor: Actor, now: float
    ) -> Override:
        policy, key = self.policy(name), _client_key(key)
        override = Override(name, key, request.rate, request.burst, now + request.expires_in,
                            request.reason, actor.token, now)  # fmt: skip
        try:
            override.limit_for(policy.limit)  # its arithmetic must stay in exact integers
            Override.from_dict(override.to_dict())  # what every replica accepts reading back
        except ValueError as exc:
            raise ControlRequestError(str(exc)) from None
        return override

    async def _store(self, overrides: list[Override], actor: Actor) -> list[dict[str, Any]]:
        """Stored and announced in one storage call, then applied here."""
        olds = await self.admin_store.put_overrides(overrides, self._clock(), MAX_OVERRIDES)
        stored = []
        for override, old in zip(overrides, olds, strict=True):
            self._limiter.put_override(override)
            new = override.to_dict()
            self._audit(actor, "override_put", override.policy, override.key,
                        old and old.to_dict(), new)  # fmt: skip
            stored.append({"override": new, "previous": old.to_dict() if old else None})
        return stored

    async def delete_override(self, name: str, key: str, actor: Actor) -> dict[str, Any]:
        key = _client_key(key)
        full = f"{name}:{key}"
        old = await self.admin_store.delete_override(full, self._clock())
        self._limiter.drop_override(full)
        if old is None:
            raise NoSuchOverride(f"no override for {full}")
        await self._changed(full)
        self._audit(actor, "override_delete", name, key, old.to_dict(), None)
        return {"deleted": old.to_dict()}

    async def list_overrides(self, cursor: str = "", limit: int = PAGE) -> dict[str, Any]:
        """One page of the unexpired overrides in full-key order; pass
        ``next_cursor`` back for the next (None after the last page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ControlRequestError(f"the limit is 1 to {MAX_PAGE}")
        if cursor and not _is_full_key(cursor):
            raise ControlRequestError("the cursor is the next_cursor of a previous page")
        found = await self.admin_store.page(cursor, limit, self._clock())
        return {
            "overrides": [o.to_dict() for o in found.overrides],
            "next_cursor": found.next_cursor,
        }

    async def top(self, name: str | None, window: int, limit: int) -> list[dict[str, Any]]:
        if name is not None:
            self.policy(name)
        if not 1 <= window <= MAX_WINDOW:
            raise ControlRequestError(f"the window is 1 to {MAX_WINDOW} seconds")
        buckets = await self.admin_store.rejections(window, self._clock())
        rows = merge_top([*buckets, self._limiter.rejections.counts], name, limit)
        return [{"policy": p, "key": k, "rejected": n} for p, k, n in rows]

    # Keeping this replica in step with the others.

    async def run(self) -> None:
        """Sync on every announced change (or every POLL_SECONDS) and merge the
        rejection counts into the storage every FLUSH_SECONDS, until cancelled."""
        listener = asyncio.create_task(self.admin_store.listen(self._wake.set))
        flusher = asyncio.create_task(self._flush_forever())
        try:
            while True:
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                await asyncio.sleep(COALESCE_SECONDS)  # one sync for a burst of changes
                self._wake.clear()
                await self._quietly(self.sync)
        finally:
            listener.cancel()
            flusher.cancel()

    async def sync(self) -> None:
        """Follow what changed since the last sync: re-read only the overrides
        of the keys the change log names (all of them the first time, or when
        the log lost some)."""
        changes = await self.admin_store.changes(self._seq)
        if changes is None:
            return
        if changes.complete and self._seq is not None:
            self._limiter.forget(changes.keys)
            for full_key, found in (await self.admin_store.overrides_for(changes.keys)).items():
                if found is None:
                    self._limiter.drop_override(full_key)
                else:
                    self._limiter.put_override(found)
        else:
            self._limiter.forget_all()
            self._limiter.set_overrides(await self.admin_store.overrides(self._clock()))
        self._seq = changes.seq

    async def flush(self) -> None:
        counts = self._limiter.rejections.drain()
        if counts:
            await self.admin_store.add_rejections(counts, self._clock())

    async def _flush_forever(self) -> None:
        for flushes in itertools.count(1):
            await asyncio.sleep(FLUSH_SECONDS)
            await self._quietly(self.flush)
            if flushes % PRUNE_EVERY == 0:
                self._limiter.drop_expired(self._clock())

    async def _quietly(self, step: Callable[[], Any]) -> None:
        try:
            await step()
        except StorageError as exc:
            if self._errors.allow():
                log.warning("control plane: storage error (retrying): %s", exc)
        except Exception:
            log.exception("control plane: unexpected error (retrying)")

    async def _changed(self, full_key: str) -> None:
        """Apply locally at once, then tell the other replicas."""
        self._limiter.forget([full_key])
        await self.admin_store.announce([full_key])

    def _current(self, full_key: str) -> dict[str, Any] | None:
        found = self._limiter.overrides.get(full_key)
        return found.to_dict() if found and found.expires_at > self._clock() else None

    def _audit(
        self, actor: Actor, operation: str, policy: str, key: str, old: Any, new: Any
    ) -> None:
        audit.info(
            "admin %s %s:%s by %s", operation, policy, key, actor.token,
            extra={"token": actor.token, "operation": operation, "policy": policy, "key": key,
                   "old": old, "new": new, "request_id": actor.request_id},
        )  # fmt: skip


def describe_limit(limit: Limit) -> dict[str, Any]:
    return {
        "limit": str(limit.rate),
        "burst": limit.capacity,
        "algorithm": limit.algorithm.value,
        "window_seconds": limit.window,
    }


def _reset_before(limit: Limit, outcome: Outcome, remaining: int) -> int:
    """Microseconds until the quota is whole, before the request ``peek``
    imagined (it answers as if one more request were admitted)."""
    if not outcome.admitted:
        return outcome.reset_us
    if remaining >= limit.capacity:
        return 0
    if limit.algorithm is Algorithm.GCRA:
        return max(0, outcome.reset_us - limit.interval_us)
    return outcome.reset_us


def _client_key(key: str) -> str:
    try:
        return check_key(key)
    except ValueError as exc:
        raise ControlRequestError(str(exc)) from None


def _is_full_key(text: str) -> bool:
    try:
        check_full_key(text)
    except ValueError:
        return False
    return True
