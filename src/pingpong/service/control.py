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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pingpong.core.algorithms import Algorithm, Limit, Outcome, retry_after, whole_seconds
from pingpong.core.clientip import parse_address
from pingpong.core.heavy_hitters import MAX_WINDOW, HeavyHitters, merge_top
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.overrides import MAX_OVERRIDES, Override, check_key
from pingpong.core.policy import API_KEY, CLIENT_IP, GLOBAL, Policy
from pingpong.core.rates import Rate
from pingpong.core.storage.admin import AdminStore
from pingpong.core.storage.base import Check, StorageError

if TYPE_CHECKING:
    from pingpong.service.runtime import Service

log = logging.getLogger("pingpong.control")
audit = logging.getLogger("pingpong.audit")
POLL_SECONDS = 0.5  # the fallback when no change is pushed
FLUSH_SECONDS = 1.0  # rejection counts merged into the storage this often


class ControlRequestError(Exception):
    """A request the control plane refuses as malformed (a bad key, address or
    window): the caller's mistake, unlike any other exception, which is a bug."""


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
    def __init__(
        self, service: Service, store: AdminStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._service = service
        self.store = store
        self.rejections = HeavyHitters()
        self.overrides: dict[str, Override] = {}
        self._clock = clock
        self._seq: int | None = None
        self._wake = asyncio.Event()
        self._errors = LogThrottle(lines=1, period=10.0)

    # What the HTTP layer asks.

    def policy(self, name: str) -> Policy:
        for policy in self._service.limiter.all_policies:
            if policy.name == name:
                return policy
        raise UnknownPolicy(f"no policy {name!r} is running")

    def key_for_address(self, policy: Policy, text: str) -> str:
        """The key ``policy`` counts a client at address ``text`` by."""
        address = parse_address(text)
        if address is None:
            raise ControlRequestError(f"not an IP address: {text!r}")
        if policy.key == GLOBAL:
            return "*"
        if policy.key == API_KEY:
            raise ControlRequestError(f"policy {policy.name!r} counts API keys, not addresses")
        identity = self._service.resolver.identity(address)
        return identity if policy.key == CLIENT_IP else "ip=" + identity

    async def inspect(self, name: str, key: str) -> dict[str, Any]:
        policy, key = self.policy(name), _client_key(key)
        limit = self._service.limiter.limit_for(policy, key)
        full = f"{name}:{key}"
        [outcome] = await self._service.storage.peek([Check(full, limit, False)])
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
        found = await self._service.storage.reset([full])
        await self._changed(full)
        self._audit(actor, "reset", name, key, before, None)
        return {"policy": name, "key": key, "reset": True, "had_state": found > 0}

    async def put_override(
        self, name: str, key: str, rate: Rate, burst: int | None, expires_in: int,
        reason: str, actor: Actor,
    ) -> dict[str, Any]:  # fmt: skip
        policy, key = self.policy(name), _client_key(key)
        now = self._clock()
        override = Override(name, key, rate, burst, now + expires_in, reason, actor.token, now)
        try:
            override.limit_for(policy.limit)
        except ValueError as exc:  # its arithmetic would leave exact integers
            raise ControlRequestError(str(exc)) from None
        old = await self.store.put_override(override, now, MAX_OVERRIDES)
        self.overrides[override.full_key] = override
        await self._changed(override.full_key)
        self._audit(actor, "override_put", name, key, old and old.to_dict(), override.to_dict())
        return {"override": override.to_dict(), "previous": old.to_dict() if old else None}

    async def delete_override(self, name: str, key: str, actor: Actor) -> dict[str, Any]:
        key = _client_key(key)
        full = f"{name}:{key}"
        old = await self.store.delete_override(full, self._clock())
        self.overrides.pop(full, None)
        if old is None:
            raise NoSuchOverride(f"no override for {full}")
        await self._changed(full)
        self._audit(actor, "override_delete", name, key, old.to_dict(), None)
        return {"deleted": old.to_dict()}

    async def list_overrides(self) -> list[dict[str, Any]]:
        found = await self.store.overrides(self._clock())
        return [o.to_dict() for o in sorted(found, key=lambda o: (o.policy, o.key))]

    async def top(self, name: str | None, window: int, limit: int) -> list[dict[str, Any]]:
        if name is not None:
            self.policy(name)
        if not 1 <= window <= MAX_WINDOW:
            raise ControlRequestError(f"the window is 1 to {MAX_WINDOW} seconds")
        buckets = await self.store.rejections(window, self._clock())
        rows = merge_top([*buckets, self.rejections.counts], name, limit)
        return [{"policy": p, "key": k, "rejected": n} for p, k, n in rows]

    # Keeping this replica in step with the others.

    async def run(self) -> None:
        """Sync on every announced change (or every POLL_SECONDS) and merge the
        rejection counts into the storage every FLUSH_SECONDS, until cancelled."""
        listener = asyncio.create_task(self.store.listen(self._wake.set))
        flusher = asyncio.create_task(self._flush_forever())
        try:
            while True:
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                await self._quietly(self.sync)
        finally:
            listener.cancel()
            flusher.cancel()

    async def sync(self) -> None:
        changes = await self.store.changes(self._seq)
        if changes is None:
            return
        limiter = self._service.limiter
        if changes.complete:
            limiter.forget(changes.keys)
        else:
            limiter.forget_all()
        overrides = await self.store.overrides(self._clock())
        self.overrides = {o.full_key: o for o in overrides}
        self._service.limiter.set_overrides(overrides)
        self._seq = changes.seq

    async def flush(self) -> None:
        counts = self.rejections.drain()
        if counts:
            await self.store.add_rejections(counts, self._clock())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self._quietly(self.flush)

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
        limiter = self._service.limiter
        limiter.forget([full_key])
        limiter.set_overrides(self.overrides.values())
        await self.store.announce([full_key])

    def _current(self, full_key: str) -> dict[str, Any] | None:
        found = self.overrides.get(full_key)
        return found.to_dict() if found and found.expires_at > self._clock() else None

    def _audit(
        self, actor: Actor, operation: str, policy: str, key: str, old: Any, new: Any
    ) -> None:
        audit.info(
            "admin %s %s:%s by %s", operation, policy, key, actor.token,
            extra={"token": actor.token, "operation": operation, "policy": policy, "key": key,
                   "old": old, "new": new, "request_id": actor.request_id},
        )  # fmt: skip


def _client_key(key: str) -> str:
    try:
        return check_key(key)
    except ValueError as exc:
        raise ControlRequestError(str(exc)) from None


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
