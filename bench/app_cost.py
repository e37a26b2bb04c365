"""The app's own Python cost per request, without sockets or a server.

``python -m bench.app_cost [N]`` calls pingpong's RSGI callable directly with a
stand-in scope and protocol (the server's part is not measured), N times per
configuration, and prints microseconds per request next to the bare RSGI
callable of ``bench/peers/raw_rsgi.py`` called the same way in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.peers.raw_rsgi import app as raw
from pingpong.config import Settings
from pingpong.http.app import App
from pingpong.service import Service

ROUNDS = 5


class Scope:
    """What granian hands over for ``GET /ping`` from one client."""

    path = "/ping"
    method = "GET"
    query_string = ""
    client = "127.0.0.1:40000"

    @property
    def headers(self) -> dict[str, str]:  # a fresh object per access, as granian's
        return {"host": "127.0.0.1:8080", "user-agent": "wrk", "accept": "*/*"}


class Proto:
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        return None


def pingpong(limit: str) -> Callable[[Any, Any], Awaitable[None]]:
    settings = Settings(limit=limit)
    return App(Service(settings))


async def per_request_us(app: Callable[[Any, Any], Awaitable[None]], n: int) -> float:
    scope, proto = Scope(), Proto()
    runs = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n):
            await app(scope, proto)
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


async def main(n: int) -> None:
    configs = {
        "raw RSGI callable": raw,
        "pingpong memory:// admitted": pingpong("100000000/second"),
        "pingpong memory:// rejected": pingpong("1/hour"),
    }
    results = {name: await per_request_us(app, n) for name, app in configs.items()}
    reference = results["raw RSGI callable"]
    print(f"| app, called directly ({n} x {ROUNDS}, median) | us per request | x raw |")
    print("|---|---:|---:|")
    for name, us in results.items():
        print(f"| {name} | {us:.2f} | {us / reference:.1f} |")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
