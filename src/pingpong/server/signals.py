"""The lifecycle signals a starting process holds until its handlers exist.

SIGHUP's default action kills, and so do SIGTERM's and SIGINT's before
Python's own handler: a reload or a stop sent while a process (or a freshly
spawned worker) is still importing would kill it, and a worker dying before it
is ready stops the whole server. Held (blocked), a signal waits, and is
delivered once the handlers are installed and the signals released. Children
inherit the mask across fork and exec.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

LIFECYCLE = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def hold() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, LIFECYCLE)


def release() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, LIFECYCLE)


@contextmanager
def held() -> Iterator[None]:
    """Hold them around the start of a child, which inherits them held.
    (multiprocessing unblocks SIGINT and SIGTERM when it starts its resource
    tracker, so a hold taken earlier does not last until the child starts.)"""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, LIFECYCLE)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
