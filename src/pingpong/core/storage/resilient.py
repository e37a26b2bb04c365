"""Keeps decisions flowing when the shared storage is down, slow or refusing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from pingpong.core.algorithms import Outcome
from pingpong.core.fleet import ALIVE_SECONDS, HEARTBEAT_SECONDS, Fleet
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.stats import NoStats, Stats
from pingpong.core.storage.base import (
    OVERLOAD,
    TIMEOUT,
    Check,
    FailureMode,
    Resilience,
    SharedStorage,
    StorageError,
    StorageOptions,
)
from pingpong.core.storage.breaker import CircuitBreaker
from pingpong.core.storage.memory import MemoryStorage

log = logging.getLogger("pingpong.storage")


class StorageUnavailable(Exception):
    """Raised in ``deny`` mode when the storage cannot decide."""


class Unthrottled(Exception):
    """Raised in ``allow`` mode when the storage cannot decide: the request is
    admitted, and nothing is counted, so no quota can honestly be reported."""


class ResilientStorage:
    """Wraps a shared storage with a circuit breaker and a failure mode.

    Only ``StorageError`` is expected from the primary: the backends translate
    their drivers' failures into it (see ``redis.client.answer_within``). It
    also keeps this replica in the fleet (a heartbeat in the storage, from
    ``ping`` on): in ``local`` mode each replica enforces its share of every
    limit, so an outage keeps the fleet's limit, not one replica's each.
    """

    acquire_now = None  # the primary's answers are awaited
    acquire_one_now = None

    def __init__(
        self,
        primary: SharedStorage,
        resilience: Resilience = Resilience(),
        fallback: MemoryStorage | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.name = primary.name
        self.shared = primary.shared
        self.primary = primary
        self.fallback = fallback or MemoryStorage()
        self._stats = stats or NoStats()
        self._resilience = resilience
        self._mode = resilience.mode
        self._breaker = CircuitBreaker(
            resilience.circuit_failures, resilience.circuit_reset, self._circuit_changed
        )

        self._stats.circuit_changed(self.name, False)
        self._log_throttle = LogThrottle(lines=1, period=1.0)
        # One late answer is one failure however many decisions its call
        # carried (a batch's requests share its error): a timeout is weak
        # evidence, weighed per call. A refused connection is conclusive, so
        # each request counts, and a dead storage is left alone sooner.
        self._last_timeout: StorageError | None = None
        self.fleet = Fleet(resilience.fleet_min_replicas)
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    @property
    def resilience(self) -> Resilience:
        return self._resilience

    def configure(self, resilience: Resilience, options: StorageOptions) -> None:
        """Apply reloaded settings in place: the breaker keeps its state, the
        fallback its keys."""
        self._resilience = resilience
        self._mode = resilience.mode
        self._breaker.threshold = resilience.circuit_failures
        self._breaker.reset_after = resilience.circuit_reset
        self.fleet.floor = max(resilience.fleet_min_replicas, 1)
        self.primary.set_timeout(options.timeout)
        self.fallback.resize(options.memory_max_keys)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        if self._breaker.allow():
            started = time.perf_counter()
            try:
                outcomes = await self.primary.acquire(checks)
            except StorageError as exc:
                if exc.kind == OVERLOAD:
                    self._breaker.record_inconclusive()
                elif exc.kind != TIMEOUT or exc is not self._last_timeout:
                    self._last_timeout = exc if exc.kind == TIMEOUT else None
                    self._breaker.record_failure()
                self._stats.storage_failed(self.name, exc.kind)
                self._log_error(exc)
            else:
                self._stats.storage_answered(self.name, time.perf_counter() - started)
                self._breaker.record_success()
                return outcomes
        self._stats.fell_back(self._mode.value)
        if self._mode is FailureMode.LOCAL:
            return self.fallback.acquire_now(self._shares(checks))
        if self._mode is FailureMode.ALLOW:
            raise Unthrottled(f"{self.name} storage unavailable: admitted, not counted")
        raise StorageUnavailable(f"{self.name} storage unavailable")

    def _shares(self, checks: Sequence[Check]) -> Sequence[Check]:
        """This replica's share of each check's limit, for deciding alone."""
        if self.fleet.count == 1:
            return checks
        share = self.fleet.share
        return [Check(key, share(limit), shadow) for key, limit, shadow in checks]

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        return await self.primary.peek(checks)

    async def reset(self, keys: Sequence[str]) -> int:
        await self.fallback.reset(keys)
        return await self.primary.reset(keys)

    def _log_error(self, exc: StorageError) -> None:
        """At most one line a second: an outage must not flood the logs."""
        if self._log_throttle.allow():
            log.warning(
                "storage error, deciding with mode %s: %s (%d similar errors not logged)",
                self._mode.value, exc, self._log_throttle.take_suppressed(),
            )  # fmt: skip

    def _circuit_changed(self, is_open: bool) -> None:
        self._stats.circuit_changed(self.name, is_open)
        log.warning("storage circuit breaker %s", "opened" if is_open else "closed")

    async def ping(self) -> None:
        """Warm the storage up, and join the fleet (even if it is down now)."""
        try:
            await self.primary.ping()
        finally:
            if self._heartbeat is None:
                self._heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        """Count the fleet every second; through an outage the last count stays."""
        while True:
            with contextlib.suppress(StorageError):
                self.fleet.saw(await self.primary.heartbeat(self.fleet.replica, ALIVE_SECONDS))
            self._stats.fleet_seen(self.fleet.count)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def aclose(self) -> None:
        """Leave the fleet (the others' shares grow at their next heartbeat)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(StorageError):
                await self.primary.heartbeat(self.fleet.replica, ALIVE_SECONDS, leave=True)
        await self.primary.aclose()
