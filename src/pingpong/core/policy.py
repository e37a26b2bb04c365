"""Policies: which requests a limit applies to, and what it counts by."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from pingpong.core.algorithms import Limit

CLIENT_IP = "client_ip"
GLOBAL = "global"
HEADER_PREFIX = "header:"
API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Policy:
    """A named limit. ``key`` is ``client_ip``, ``global``, ``header:<Name>``
    (or ``api_key`` for a tier); ``path`` is exact or a prefix ending in ``*``."""

    name: str
    limit: Limit
    key: str = CLIENT_IP
    path: str = "/ping"
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    shadow: bool = False
    header: bytes = field(init=False)  # lower-case header name for header keys

    def __post_init__(self) -> None:
        name = self.key[len(HEADER_PREFIX) :] if self.key.startswith(HEADER_PREFIX) else ""
        object.__setattr__(self, "header", name.lower().encode("latin-1"))

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


def key_digest(api_key: bytes) -> bytes:
    return hashlib.sha256(api_key).digest()


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def hashed(value: bytes) -> str:
    """Client-supplied values become fixed-size keys: no huge or hostile keys."""
    return hashlib.blake2b(value, digest_size=12).hexdigest()
