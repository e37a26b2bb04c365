"""What a rollout is told (the plan), what it drives (blue), how it can end."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import httpx

from pingpong_rollout.analysis import Thresholds
from pingpong_toolkit.processes import Process

PROMOTED, ROLLED_BACK, USAGE, NOT_STARTED = 0, 1, 2, 3


class Interrupted(Exception):
    """SIGINT/SIGTERM during the rollout: roll back, then exit."""


class StartFailed(Exception):
    """Nothing was shifted: a precondition did not hold."""


@dataclass(frozen=True)
class Plan:
    steps: list[int]  # green's share of traffic, percent, ending at 100
    pause: float  # seconds each step is observed
    sample_interval: float  # seconds between two reads of /metrics
    settle: float  # seconds observed before the first step and after the decision
    thresholds: Thresholds
    fail_fast: bool  # decide a failing step before its pause is over
    ready_timeout: float
    drain_timeout: float


@dataclass(frozen=True)
class Blue:
    """The running side. Both optional with ``run``: without a URL blue is
    neither checked nor charted; without a process it is left running at weight 0."""

    url: str | None
    process: Process | None

    def alive(self) -> bool:
        """Without a process to ask, assume it runs."""
        return self.process is None or self.process.alive()

    def ready(self) -> bool:
        return self.url is None or ready(self.url)


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Ctrl-C or SIGTERM mid-rollout become Interrupted, so the rollback runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
