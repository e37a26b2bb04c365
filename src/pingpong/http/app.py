"""The RSGI application (granian's native interface): a dict of routes and one
callable, no middleware stack.

Handlers return ``(status, headers, body)``; ``__call__`` alone answers,
counts, logs, and adds what every response carries (request id, and
``Connection: close`` while draining). granian adds the length.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from itertools import count

from granian._granian import RSGIHTTPProtocol as HTTPProtocol
from granian.rsgi import Scope
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from pingpong.core.storage import StorageUnavailable
from pingpong.http.openapi import openapi_document
from pingpong.http.responses import (
    PROBLEM_TYPE,
    problem,
    ratelimit_headers,
    retry_after,
    too_many_requests,
)
from pingpong.metrics import STATS
from pingpong.service import Service

access_log = logging.getLogger("pingpong.access")

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]
Handler = Callable[["App", Scope], Awaitable[Response]]

TEXT = ("content-type", "text/plain; charset=utf-8")
JSON = ("content-type", "application/json")
PROBLEM = ("content-type", PROBLEM_TYPE)
CLOSE = ("connection", "close")
GET_HEAD = frozenset({"GET", "HEAD"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID = "x-request-id"
MAX_REQUEST_ID = 128
MAX_TARGET = 8 * 1024  # path + query; granian itself bounds the whole head (431)
NOT_FOUND: Response = (404, [TEXT], b"not found\n")
NOT_ALLOWED: Response = (405, [TEXT, ("allow", "GET, HEAD")], b"method not allowed\n")
URI_TOO_LONG: Response = (414, [TEXT], b"URI too long\n")


class App:
    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self._registry = registry or REGISTRY
        self._version = json.dumps(
            {"version": service.version, "commit": service.commit, "slot": service.slot}
        ).encode()
        self._openapi = json.dumps(openapi_document(service.version)).encode()
        # Request ids: a random per-process prefix and a counter, cheap and unique.
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = count(1)

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        started = time.perf_counter()
        STATS.in_flight += 1
        path, method = scope.path, scope.method
        route = ROUTES.get(path)
        try:
            if len(path) + len(scope.query_string) > MAX_TARGET:
                path = "unmatched"
                status, headers, body = URI_TOO_LONG
            elif route is None:
                path = "unmatched"
                status, headers, body = NOT_FOUND
            elif method not in GET_HEAD:
                status, headers, body = NOT_ALLOWED
            else:
                status, headers, body = await route(self, scope)
            request_id = self._request_id(scope)
            headers = [*headers, (REQUEST_ID, request_id)]
            if self.service.draining:
                headers.append(CLOSE)
            proto.response_bytes(status, headers, body)
        finally:
            STATS.in_flight -= 1
        elapsed = time.perf_counter() - started
        if method not in KNOWN_METHODS:
            method = "OTHER"
        STATS.requests[(method, path, status)] += 1
        STATS.durations[(method, path)].observe(elapsed)
        if status >= 500 or random.random() < self.service.settings.access_log:
            self._log(scope, method, path, status, elapsed, request_id)

    def _request_id(self, scope: Scope) -> str:
        """The caller's X-Request-ID if sane, else a new one."""
        given = scope.headers.get(REQUEST_ID)
        if given and len(given) <= MAX_REQUEST_ID:
            return str(given)
        return f"{self._id_prefix}{next(self._ids):x}"

    def _log(
        self, scope: Scope, method: str, route: str, status: int, elapsed: float, rid: str
    ) -> None:
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
                "peer": peer_address(scope.client),
                "request_id": rid,
            },
        )

    async def ping(self, scope: Scope) -> Response:
        service = self.service
        if service.faulty:
            fault = await self._inject_fault()
            if fault is not None:
                return fault
        headers = scope.headers
        identity = service.resolver.resolve(peer_address(scope.client), headers)
        try:
            decision = await service.limiter.check("/ping", scope.method, identity, headers)
        except StorageUnavailable:
            body = problem(503, "Service Unavailable", "rate-limit storage unavailable")
            return 503, [PROBLEM, ("retry-after", "1")], body
        if decision.admitted:
            return 200, [TEXT, *ratelimit_headers(decision.results)], b"pong"
        wait = retry_after(decision.retry_us)
        headers_out = [PROBLEM, ("retry-after", str(wait))]
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
        return 200, [("content-type", CONTENT_TYPE_LATEST)], body


def peer_address(client: str) -> str:
    """The address in granian's ``host:port`` (``[::1]:80`` for IPv6)."""
    return client.rpartition(":")[0].strip("[]")


ROUTES: dict[str, Handler] = {
    "/ping": App.ping,
    "/healthz": App.healthz,
    "/readyz": App.readyz,
    "/version": App.version,
    "/openapi.json": App.openapi,
    "/metrics": App.metrics,
}
