"""The ceiling: a bare RSGI callable answering ``pong`` (granian's native
interface, no ASGI messages), no framework, no limiter."""

from __future__ import annotations

from typing import Any

HEADERS = [("content-type", "text/plain; charset=utf-8")]


async def app(scope: Any, proto: Any) -> None:
    proto.response_bytes(200, HEADERS, b"pong")
