"""Policies: which requests a limit applies to, and what it counts by."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pingpong.core.algorithms import Limit

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a policy's or a tier's name
CLIENT_IP = "client_ip"
GLOBAL = "global"
HEADER_PREFIX = "header:"
API_KEY = "api_key"
THROTTLED_PATH = "/ping"  # the one route policies apply to


class Headers(Protocol):
    """A request's headers by lower-case name, as the server hands them over
    (granian's ``RSGIHeaders``): looked up by name, walked only when a
    forwarding header must be read in full."""

    def get(self, key: str, default: None = None) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """A named limit. ``key`` is ``client_ip``, ``global``, ``header:<Name>``
    (or ``api_key`` for a tier); ``path`` is exact or a prefix ending in ``*``."""

    name: str
    limit: Limit
    key: str = CLIENT_IP
    path: str = THROTTLED_PATH
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    shadow: bool = False
    header: str = field(init=False)  # lower-case header name for header keys

    def __post_init__(self) -> None:
        name = self.key[len(HEADER_PREFIX) :] if self.key.startswith(HEADER_PREFIX) else ""
        object.__setattr__(self, "header", name.lower())

    def matches(self, path: str, method: str) -> bool:
        if method not in self.methods:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass(frozen=True, slots=True)
class Tier:
    """API keys (by SHA-256 digest) whose holders get their own limit, counted
    per key, in place of the per-client policies."""

    name: str
    limit: Limit
    digests: frozenset[bytes]


def key_digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def hashed(value: str) -> str:
    """Client-supplied values become fixed-size keys: no huge or hostile keys."""
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()
