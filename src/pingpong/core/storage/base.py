"""What every storage backend offers the limiter, and the one error it raises."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from pingpong.core.algorithms import Limit, Outcome
from pingpong.core.stats import Stats
from pingpong.core.storage.admin import AdminStore


class Check(NamedTuple):
    """One policy's question for one request: may ``key`` take one more request?"""

    key: str
    limit: Limit
    shadow: bool


OVERLOAD = "overload"  # the error kind of a wait lost in this replica's own loop
TIMEOUT = "timeout"  # the storage took its budget without answering


class StorageError(Exception):
    """The backend could not answer (down, slow, refusing, or its driver broke).

    Backends translate every failure of their driver into this one type, so the
    layers above need to know no driver's exceptions. ``kind`` labels the
    ``pingpong_storage_errors_total`` metric.
    """

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = (
            kind  # timeout | connection | other | overload (this replica's, not the storage's)
        )


@dataclass(frozen=True, slots=True)
class StorageOptions:
    timeout: float = 0.05  # seconds a decision may wait for a shared storage
    memory_max_keys: int = 1_000_000
    connections: int = 16  # opened and verified before serving (per Redis node)


class FailureMode(enum.StrEnum):
    ALLOW = "allow"  # fail open: admit everything
    DENY = "deny"  # fail closed: answer 503
    LOCAL = "local"  # keep throttling with an in-process limiter


@dataclass(frozen=True, slots=True)
class Resilience:
    """What to do when the storage fails, and when to stop asking it."""

    mode: FailureMode = FailureMode.LOCAL
    circuit_failures: int = 5
    circuit_reset: float = 2.0
    fleet_min_replicas: int = 1  # an outage divides each limit by at least this many


class Storage(Protocol):
    """Decides a request's checks all-or-nothing.

    Every check is evaluated; if any non-shadow check rejects, no state changes
    at all (a rejected request consumes no quota anywhere). Otherwise every
    admitted check (shadow ones included) consumes one unit. ``peek`` answers
    the same question without consuming anything; ``reset`` forgets keys.
    """

    name: str
    shared: bool  # whether other processes see the same state

    @property
    def acquire_now(self) -> Callable[[Sequence[Check]], list[Outcome]] | None:
        """``acquire`` without a coroutine, for a storage that never waits (the
        limiter's fast path); None for one that does."""

    @property
    def acquire_one_now(self) -> Callable[[str, Limit], Outcome] | None:
        """``acquire_now`` of one non-shadow check, without building the check
        (the common request); None where ``acquire_now`` is None."""

    def configure(self, resilience: Resilience, options: StorageOptions) -> None:
        """Apply reloaded settings in place."""

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]: ...

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]: ...

    async def reset(self, keys: Sequence[str]) -> int: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class SharedStorage(Storage, Protocol):
    """A storage other processes share: it has a network to wait for."""

    def set_timeout(self, seconds: float) -> None: ...

    async def heartbeat(self, replica: str, alive: float, leave: bool = False) -> int:
        """Count ``replica`` in (or out, ``leave``): how many replicas were
        heard from within ``alive`` seconds."""
        ...


class Opened(NamedTuple):
    """What a storage URL opens: the limiter's storage, and where the control
    plane keeps what every replica sharing it must agree on."""

    storage: Storage
    admin_store: AdminStore


class Backend(Protocol):
    """A storage reachable by URL: it names its schemes, checks a URL without
    connecting (raising ValueError with the reason) and opens from one."""

    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def check_url(cls, url: str) -> None: ...

    @classmethod
    def open(
        cls, url: str, options: StorageOptions, resilience: Resilience, stats: Stats
    ) -> Opened: ...
