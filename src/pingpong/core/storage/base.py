"""What every storage backend offers the limiter, and the one error it raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from pingpong.core.algorithms import Limit, Outcome

if TYPE_CHECKING:
    from pingpong.core.storage.control import ControlStore


class Check(NamedTuple):
    """One policy's question for one request: may ``key`` take one more request?"""

    key: str
    limit: Limit
    shadow: bool


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


class Storage(Protocol):
    """Decides a request's checks all-or-nothing.

    Every check is evaluated; if any non-shadow check rejects, no state changes
    at all (a rejected request consumes no quota anywhere). Otherwise every
    admitted check (shadow ones included) consumes one unit. ``peek`` answers
    the same question without consuming anything; ``reset`` forgets keys.
    """

    name: str
    shared: bool  # whether other processes see the same state

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

    def control(self) -> ControlStore:
        """The control plane's store on the same backend."""
        ...


class Backend(Storage, Protocol):
    """A storage reachable by URL: it names its schemes, checks a URL without
    connecting (raising ValueError with the reason) and opens from one."""

    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def check_url(cls, url: str) -> None: ...

    @classmethod
    def from_url(cls, url: str, options: StorageOptions) -> Storage: ...
