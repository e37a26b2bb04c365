"""Bounded logging for floods: an outage must not write a line per request."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """Allows ``lines`` log lines per ``period`` seconds and counts the rest,
    so the next line that is written can say how many were suppressed."""

    def __init__(
        self, lines: int = 1, period: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lines = lines
        self._period = period
        self._clock = clock
        self._window_start = float("-inf")
        self._written = 0
        self.suppressed = 0

    def allow(self) -> bool:
        now = self._clock()
        if now - self._window_start >= self._period:
            self._window_start, self._written = now, 0
        if self._written >= self._lines:
            self.suppressed += 1
            return False
        self._written += 1
        return True

    def take_suppressed(self) -> int:
        """The count since the last line written, reset to zero."""
        count, self.suppressed = self.suppressed, 0
        return count
