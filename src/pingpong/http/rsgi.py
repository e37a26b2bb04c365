"""The RSGI vocabulary both listeners speak: the answer a handler returns, the
header constants, the request-id rule, the target length and body reading.

Written once so that the public port and the admin port cannot disagree: the
request ids of both land in the same logs.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterable
from itertools import count
from typing import Protocol

from pingpong.http.problems import Problem

Header = tuple[str, str]
Headers = list[Header]
Response = tuple[int, Headers, bytes]

TEXT: Header = ("content-type", "text/plain; charset=utf-8")
JSON: Header = ("content-type", "application/json")
CLOSE: Header = ("connection", "close")
# granian names itself in a server header unless the app sets one, and has no
# option to drop it (headers_from_py in
# https://github.com/emmett-framework/granian/blob/master/src/conversion.rs):
# every answer sets it empty.
NO_SERVER: Header = ("server", "")
REQUEST_ID = "x-request-id"
# A caller's request id is echoed into headers and logs: only a safe charset.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
BODY_TIMEOUT_SECONDS = 10.0


class HeaderMap(Protocol):
    def get(self, key: str, default: None = None) -> str | None: ...


class Target(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def query_string(self) -> str: ...


class RequestIds:
    """The caller's ``X-Request-ID`` when it is short and plain, else a new one:
    a random per-process prefix and a counter, cheap and unique."""

    def __init__(self, label: str = "") -> None:
        # prefix + the counter in hex, formatted in C: no Python frame per id.
        self._new = map(f"{label}{os.urandom(6).hex()}-%x".__mod__, count(1))

    def of(self, headers: HeaderMap) -> str:
        given = headers.get(REQUEST_ID)
        if given and SAFE_REQUEST_ID.match(given):
            return str(given)
        return next(self._new)


def target_length(scope: Target) -> int:
    """Path plus query, the part of the request line a route reads."""
    return len(scope.path) + len(scope.query_string)


def peer_address(client: str) -> str:
    """The address in granian's ``host:port`` (``[::1]:80`` for IPv6)."""
    return client.rpartition(":")[0].strip("[]")


async def read_body(headers: HeaderMap, chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (else 413), within
    BODY_TIMEOUT_SECONDS (else 408: a client that never sends it holds nothing)."""
    length = headers.get("content-length")
    if length is not None and not (length.isascii() and length.isdigit() and int(length) <= limit):
        raise Problem(413, f"the body is at most {limit} bytes")
    body = b""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise Problem(413, f"the body is at most {limit} bytes")
    except TimeoutError:
        raise Problem(408, f"the body did not arrive within {BODY_TIMEOUT_SECONDS:g} s") from None
    return body
