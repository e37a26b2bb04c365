"""Fixtures of the reliability suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .helpers import Pin


@pytest.fixture
def pin() -> Iterator[Pin]:
    """Keeps the servers and the load generator off each other's core: this
    test process (and the load threads it starts) moves to the last CPU, and
    ``pin(pid)`` puts a server process on the others. No-op on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield lambda pid: None
        return
    os.sched_setaffinity(0, {cpus[-1]})
    try:
        yield lambda pid: os.sched_setaffinity(pid, set(cpus[:-1]))
    finally:
        os.sched_setaffinity(0, set(cpus))
