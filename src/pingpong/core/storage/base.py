"""What every storage backend offers the limiter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from pingpong.core.algorithms import Limit, Outcome


class Check(NamedTuple):
    """One policy's question for one request: may ``key`` take one more request?"""

    key: str
    limit: Limit
    shadow: bool


class StorageError(Exception):
    """The backend could not answer (down, slow, refusing)."""


class Storage(Protocol):
    """Decides a request's checks all-or-nothing.

    Every check is evaluated; if any non-shadow check rejects, no state changes
    at all (a rejected request consumes no quota anywhere). Otherwise every
    admitted check (shadow ones included) consumes one unit.
    """

    name: str
    shared: bool  # whether other processes see the same state

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
