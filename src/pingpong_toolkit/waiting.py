"""Waiting on a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress


def eventually(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` runs out (False).

    An exception counts as "not yet": a server that is still starting refuses
    connections, and that is the very thing being waited out.
    """
    deadline = time.monotonic() + timeout
    while True:
        with suppress(Exception):
            if predicate():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """``eventually``, raising TimeoutError when the condition never holds."""
    if not eventually(predicate, timeout, interval):
        raise TimeoutError(f"condition not met within {timeout}s")
