"""The ceiling: a bare RSGI callable answering ``pong`` (granian's native
interface, no ASGI messages), on pingpong's own server.

Usage: python -m raw_rsgi PORT   (from bench/peers, with the repo's venv)
"""

from __future__ import annotations

import sys
from typing import Any

import uvloop

from pingpong.config import Settings
from pingpong.server import Granian, bind

HEADERS = [("content-type", "text/plain; charset=utf-8")]


async def app(scope: Any, proto: Any) -> None:
    proto.response_bytes(200, HEADERS, b"pong")


if __name__ == "__main__":
    sock = bind(Settings(host="127.0.0.1", port=int(sys.argv[1])))
    uvloop.run(Granian(app, sock).serve())
