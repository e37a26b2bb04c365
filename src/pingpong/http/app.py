"""The ASGI application: a dict of routes and one callable, no middleware stack."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
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

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]
Handler = Callable[["App", Scope, Send], Awaitable[int]]

TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")
PROBLEM = (b"content-type", PROBLEM_TYPE.encode())
CLOSE = (b"connection", b"close")
GET_HEAD = frozenset({"GET", "HEAD"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PONG = b"pong"


class App:
    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self._registry = registry or REGISTRY
        self._version = json.dumps(
            {"version": service.version, "commit": service.commit, "slot": service.slot}
        ).encode()
        self._openapi = json.dumps(openapi_document(service.version)).encode()
        self._publisher: asyncio.Task[None] | None = None

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
                status = await self._send(send, 404, [TEXT], b"not found\n", method)
            elif method not in GET_HEAD:
                allow = (b"allow", b"GET, HEAD")
                status = await self._send(send, 405, [TEXT, allow], b"method not allowed\n", method)
            else:
                status = await route(self, scope, send)
        finally:
            STATS.in_flight -= 1
        if method not in KNOWN_METHODS:
            method = "OTHER"
        STATS.requests[(method, path, status)] += 1
        STATS.durations[(method, path)].observe(time.perf_counter() - started)

    async def _send(
        self, send: Send, status: int, headers: Headers, body: bytes, method: str
    ) -> int:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        if self.service.draining:
            headers.append(CLOSE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        return status

    async def ping(self, scope: Scope, send: Send) -> int:
        service = self.service
        if service.faulty:
            failed = await self._inject_fault(scope, send)
            if failed:
                return failed
        headers = scope["headers"]
        client = scope.get("client")
        identity = service.resolver.resolve(client[0] if client else None, headers)
        try:
            decision = await service.limiter.check("/ping", scope["method"], identity, headers)
        except StorageUnavailable:
            body = problem(503, "Service Unavailable", "rate-limit storage unavailable")
            return await self._send(
                send, 503, [PROBLEM, (b"retry-after", b"1")], body, scope["method"]
            )
        if decision.admitted:
            return await self._send(
                send, 200, [TEXT, *ratelimit_headers(decision.results)], PONG, scope["method"]
            )
        wait = retry_after(decision.retry_us)
        headers_out = [PROBLEM, (b"retry-after", b"%d" % wait)]
        headers_out += ratelimit_headers(decision.results)
        body = too_many_requests(decision.results[0][0].name, wait)
        return await self._send(send, 429, headers_out, body, scope["method"])

    async def _inject_fault(self, scope: Scope, send: Send) -> int:
        """Drill faults (PINGPONG_FAULT_DELAY, PINGPONG_FAULT_ERROR_RATE); 0 = none."""
        settings = self.service.settings
        if settings.fault_delay:
            await asyncio.sleep(settings.fault_delay)
        if random.random() < settings.fault_error_rate:
            body = problem(500, "Internal Server Error", "injected fault (drill)")
            return await self._send(send, 500, [PROBLEM], body, scope["method"])
        return 0

    async def healthz(self, scope: Scope, send: Send) -> int:
        return await self._send(send, 200, [TEXT], b"ok\n", scope["method"])

    async def readyz(self, scope: Scope, send: Send) -> int:
        if self.service.draining:
            return await self._send(send, 503, [TEXT], b"draining\n", scope["method"])
        return await self._send(send, 200, [TEXT], b"ready\n", scope["method"])

    async def version(self, scope: Scope, send: Send) -> int:
        return await self._send(send, 200, [JSON], self._version, scope["method"])

    async def openapi(self, scope: Scope, send: Send) -> int:
        return await self._send(send, 200, [JSON], self._openapi, scope["method"])

    async def metrics(self, scope: Scope, send: Send) -> int:
        body = generate_latest(self._registry)
        content_type = (b"content-type", CONTENT_TYPE_LATEST.encode())
        return await self._send(send, 200, [content_type], body, scope["method"])

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
