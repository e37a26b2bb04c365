"""The ASGI application: a dict of routes and one callable, no middleware stack.

Handlers return ``(status, headers, body)``; ``_http`` alone sends, counts,
logs, and adds what every response carries (length, request id, and
``Connection: close`` while draining).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from pingpong.core.storage import StorageError, StorageUnavailable
from pingpong.http.openapi import openapi_document
from pingpong.http.responses import (
    PROBLEM_TYPE,
    problem,
    ratelimit_headers,
    retry_after,
    too_many_requests,
)
from pingpong.metrics import STATS, WORKERS_DIR_ENV, write_worker_file
from pingpong.service import Service

log = logging.getLogger("pingpong.http")
access_log = logging.getLogger("pingpong.access")

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]
Handler = Callable[["App", Scope], Awaitable[Response]]

TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")
PROBLEM = (b"content-type", PROBLEM_TYPE.encode())
CLOSE = (b"connection", b"close")
GET_HEAD = frozenset({"GET", "HEAD"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID = b"x-request-id"
MAX_REQUEST_ID = 128
NOT_FOUND: Response = (404, [TEXT], b"not found\n")
NOT_ALLOWED: Response = (405, [TEXT, (b"allow", b"GET, HEAD")], b"method not allowed\n")


class App:
    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self._registry = registry or REGISTRY
        self._version = json.dumps(
            {"version": service.version, "commit": service.commit, "slot": service.slot}
        ).encode()
        self._openapi = json.dumps(openapi_document(service.version)).encode()
        self._publisher: asyncio.Task[None] | None = None
        # Request ids: a random per-process prefix and a counter, cheap and unique.
        self._id_prefix = os.urandom(6).hex().encode() + b"-"
        self._ids = count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, send: Send) -> None:
        started = time.perf_counter()
        STATS.in_flight += 1
        path, method = scope["path"], scope["method"]
        route = ROUTES.get(path)
        try:
            if route is None:
                path = "unmatched"
                status, headers, body = NOT_FOUND
            elif method not in GET_HEAD:
                status, headers, body = NOT_ALLOWED
            else:
                status, headers, body = await route(self, scope)
            request_id = self._request_id(scope["headers"])
            headers = [
                *headers,
                (b"content-length", b"%d" % len(body)),
                (REQUEST_ID, request_id),
            ]
            if self.service.draining:
                headers.append(CLOSE)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        finally:
            STATS.in_flight -= 1
        elapsed = time.perf_counter() - started
        if method not in KNOWN_METHODS:
            method = "OTHER"
        STATS.requests[(method, path, status)] += 1
        STATS.durations[(method, path)].observe(elapsed)
        if status >= 500 or random.random() < self.service.settings.access_log:
            self._log(scope, method, path, status, elapsed, request_id)

    def _request_id(self, headers: Headers) -> bytes:
        """The caller's X-Request-ID if sane, else a new one."""
        for name, value in headers:
            if name == REQUEST_ID and 0 < len(value) <= MAX_REQUEST_ID:
                return value
        return b"%s%x" % (self._id_prefix, next(self._ids))

    def _log(
        self, scope: Scope, method: str, route: str, status: int, elapsed: float, rid: bytes
    ) -> None:
        client = scope.get("client")
        access_log.log(
            logging.ERROR if status >= 500 else logging.INFO,
            "%s %s %d",
            method,
            route,
            status,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "peer": client[0] if client else None,
                "request_id": rid.decode("latin-1"),
            },
        )

    async def ping(self, scope: Scope) -> Response:
        service = self.service
        if service.faulty:
            fault = await self._inject_fault()
            if fault is not None:
                return fault
        headers = scope["headers"]
        client = scope.get("client")
        identity = service.resolver.resolve(client[0] if client else None, headers)
        try:
            decision = await service.limiter.check("/ping", scope["method"], identity, headers)
        except StorageUnavailable:
            body = problem(503, "Service Unavailable", "rate-limit storage unavailable")
            return 503, [PROBLEM, (b"retry-after", b"1")], body
        if decision.admitted:
            return 200, [TEXT, *ratelimit_headers(decision.results)], b"pong"
        wait = retry_after(decision.retry_us)
        headers_out = [PROBLEM, (b"retry-after", b"%d" % wait)]
        headers_out += ratelimit_headers(decision.results)
        return 429, headers_out, too_many_requests(decision.results[0][0].name, wait)

    async def _inject_fault(self) -> Response | None:
        """Drill faults (PINGPONG_FAULT_DELAY, PINGPONG_FAULT_ERROR_RATE)."""
        settings = self.service.settings
        if settings.fault_delay:
            await asyncio.sleep(settings.fault_delay)
        if random.random() < settings.fault_error_rate:
            return 500, [PROBLEM], problem(500, "Internal Server Error", "injected fault (drill)")
        return None

    async def healthz(self, scope: Scope) -> Response:
        return 200, [TEXT], b"ok\n"

    async def readyz(self, scope: Scope) -> Response:
        if self.service.draining:
            return 503, [TEXT], b"draining\n"
        return 200, [TEXT], b"ready\n"

    async def version(self, scope: Scope) -> Response:
        return 200, [JSON], self._version

    async def openapi(self, scope: Scope) -> Response:
        return 200, [JSON], self._openapi

    async def metrics(self, scope: Scope) -> Response:
        body = generate_latest(self._registry)
        return 200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], body

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _install_reload_signal(self.service)
                if os.environ.get(WORKERS_DIR_ENV):
                    self._publisher = asyncio.create_task(_publish_metrics())
                try:
                    await self.service.storage.ping()
                except StorageError as exc:  # serve anyway: the failure mode decides
                    log.warning("storage not reachable at startup: %s", exc)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.storage.aclose()
                write_worker_file()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _publish_metrics() -> None:
    """Workers (--workers N) share their counts once a second."""
    while True:
        write_worker_file()
        await asyncio.sleep(1.0)


def _install_reload_signal(service: Service) -> None:
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, service.reload)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        log.debug("SIGHUP reload not available in this thread")


ROUTES: dict[str, Handler] = {
    "/ping": App.ping,
    "/healthz": App.healthz,
    "/readyz": App.readyz,
    "/version": App.version,
    "/openapi.json": App.openapi,
    "/metrics": App.metrics,
}
