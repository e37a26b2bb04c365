"""Keeps decisions flowing when the shared storage is down, slow or refusing."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence

from pingpong.core.algorithms import Outcome
from pingpong.core.storage.base import Check, Storage, StorageError
from pingpong.core.storage.memory import MemoryStorage
from pingpong.metrics import STATS

log = logging.getLogger("pingpong.storage")


class FailureMode(enum.StrEnum):
    ALLOW = "allow"  # fail open: admit everything
    DENY = "deny"  # fail closed: answer 503
    LOCAL = "local"  # keep throttling with an in-process limiter


class StorageUnavailable(Exception):
    """Raised in ``deny`` mode when the storage cannot decide."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset_after``
    seconds lets one probe through (half-open) and closes on its success."""

    def __init__(
        self,
        threshold: int,
        reset_after: float,
        on_change: Callable[[bool], None] = lambda is_open: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._reset_after = reset_after
        self._on_change = on_change
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self._reset_after:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        if self._opened_at is not None:
            self._opened_at, self._probing = None, False
            self._on_change(False)

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self._threshold):
            was_open = self._opened_at is not None
            self._opened_at, self._probing = self._clock(), False
            if not was_open:
                self._on_change(True)


class ResilientStorage:
    """Wraps a shared storage with a circuit breaker and a failure mode."""

    def __init__(
        self,
        primary: Storage,
        mode: FailureMode,
        breaker_threshold: int = 5,
        breaker_reset: float = 2.0,
        local: MemoryStorage | None = None,
    ) -> None:
        self.name = primary.name
        self.shared = primary.shared
        self._primary = primary
        self._mode = mode
        self._local = local or MemoryStorage()
        self._breaker = CircuitBreaker(breaker_threshold, breaker_reset, self._circuit_changed)
        self._duration = STATS.storage_durations[primary.name]
        STATS.circuit_open[primary.name] = 0
        self._last_logged = float("-inf")
        self._suppressed = 0

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        if self._breaker.allow():
            started = time.perf_counter()
            try:
                outcomes = await self._primary.acquire(checks)
            except StorageError as exc:
                self._breaker.record_failure()
                STATS.storage_errors[(self.name, getattr(exc, "kind", "other"))] += 1
                self._log_error(exc)
            else:
                self._duration.observe(time.perf_counter() - started)
                self._breaker.record_success()
                return outcomes
        STATS.fallbacks[self._mode.value] += 1
        if self._mode is FailureMode.LOCAL:
            return self._local.acquire_now(checks)
        if self._mode is FailureMode.ALLOW:
            return [Outcome(True, check.limit.capacity - 1, 0, 0) for check in checks]
        raise StorageUnavailable(f"{self.name} storage unavailable")

    def _log_error(self, exc: StorageError) -> None:
        """At most one line a second: an outage must not flood the logs."""
        now = time.monotonic()
        if now - self._last_logged < 1.0:
            self._suppressed += 1
            return
        log.warning(
            "storage error, deciding with mode %s: %s (%d similar errors not logged)",
            self._mode.value, exc, self._suppressed,
        )  # fmt: skip
        self._last_logged, self._suppressed = now, 0

    def _circuit_changed(self, is_open: bool) -> None:
        STATS.circuit_open[self.name] = int(is_open)
        log.warning("storage circuit breaker %s", "opened" if is_open else "closed")

    async def ping(self) -> None:
        await self._primary.ping()

    async def aclose(self) -> None:
        await self._primary.aclose()
