"""A circuit breaker: stop asking a storage that keeps failing."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset_after``
    seconds lets one probe through (half-open) and closes on its success.
    Failures are evidence about the storage only: a wait this process lost in
    its own queueing is ``record_inconclusive``, never a failure."""

    def __init__(
        self,
        threshold: int,
        reset_after: float,
        on_change: Callable[[bool], None] = lambda is_open: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
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
        if self._probing or self._clock() - self._opened_at < self.reset_after:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        if self._opened_at is not None:
            self._opened_at, self._probing = None, False
            self._on_change(False)

    def record_inconclusive(self) -> None:
        """No answer, but no evidence against the storage either (this process
        was too busy to wait for it): a probe may go again, nothing opens."""
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self.threshold):
            was_open = self._opened_at is not None
            self._opened_at, self._probing = self._clock(), False
            if not was_open:
                self._on_change(True)
