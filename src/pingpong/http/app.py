"""The RSGI application (granian's native interface): a dict of routes and one
callable, no middleware stack.

Handlers return ``(status, headers, body)``; ``__call__`` alone answers,
counts, logs, and adds what every response carries (request id, and
``Connection: close`` while draining). granian adds the length. A handler
that raises is answered here with a problem+json 500 carrying the request id,
counted and logged like any other answer: granian's bare 500 is never seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable

from granian.rsgi import Headers, HTTPProtocol, Scope
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pingpong.core.limiter import Rules
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.looplag import LOOP_LAG
from pingpong.core.policy import THROTTLED_PATH
from pingpong.core.storage.resilient import StorageUnavailable
from pingpong.http.internal import INTERNAL_PATHS, version_body
from pingpong.http.openapi import openapi_document
from pingpong.http.problems import PROBLEM, problem_body
from pingpong.http.prometheus import registry_for
from pingpong.http.responses import PolicyResponses
from pingpong.http.rsgi import (
    CLOSE,
    JSON,
    NO_SERVER,
    REQUEST_ID,
    TEXT,
    RequestIds,
    Response,
    peer_address,
    target_length,
)
from pingpong.service import Counters, Service

access_log = logging.getLogger("pingpong.access")

# The headers are read from the scope once per request (granian builds a new
# object at each read) and handed to the handler with it.
Handler = Callable[["App", Scope, Headers], Awaitable[Response]]

GET_HEAD = frozenset({"GET", "HEAD"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_TARGET = 8 * 1024  # path + query; granian itself bounds the whole head (431)
UNMATCHED = "unmatched"  # the route label of everything that matched no route
NOT_FOUND: Response = (404, [TEXT], b"not found\n")
NOT_ALLOWED: Response = (405, [TEXT, ("allow", "GET, HEAD")], b"method not allowed\n")
URI_TOO_LONG: Response = (414, [TEXT], b"URI too long\n")
ERROR_LINES_PER_SECOND = 10  # 5xx access lines; the rest are counted, then reported
INTERNAL_ERROR = problem_body(500, "unexpected error; see the server log")
STORAGE_DOWN = problem_body(503, "rate-limit storage unavailable")
OVERLOADED = problem_body(503, "overloaded; retry in 1 s")
SHED: Response = (503, [PROBLEM, ("retry-after", "1")], OVERLOADED)


class App:
    """``registry``: what /metrics exports (with --workers N, every worker's
    counts); by default this service's own. With ``metrics_port`` set,
    /metrics and /version are served there only (``pingpong.http.internal``):
    the public port answers 404 for them."""

    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.counters: Counters = service.counters
        self.registry = registry or registry_for(lambda: self.counters)
        self._version = version_body((service.version, service.commit, service.slot))
        internal_elsewhere = service.settings.metrics_port is not None
        self._routes = {p: h for p, h in ROUTES.items()
                        if not (internal_elsewhere and p in INTERNAL_PATHS)}  # fmt: skip
        self._openapi = json.dumps(openapi_document(service.version, self._routes)).encode()
        self._request_ids = RequestIds()
        self._error_lines = LogThrottle(lines=ERROR_LINES_PER_SECOND, period=1.0)
        self._rules: Rules | None = None
        self._responses = PolicyResponses(())

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        started = time.perf_counter()
        queued = LOOP_LAG.current()
        counters = self.counters
        counters.in_flight += 1
        path, method = scope.path, scope.method
        handler = self._routes.get(path)
        route = path if handler is not None else UNMATCHED
        request_headers = scope.headers
        request_id = self._request_ids.of(request_headers)
        try:
            if target_length(scope) > MAX_TARGET:
                route = UNMATCHED
                status, headers, body = URI_TOO_LONG
            elif handler is None:
                status, headers, body = NOT_FOUND
            elif method not in GET_HEAD:
                status, headers, body = NOT_ALLOWED
            elif handler is App.ping and self._overloaded():
                counters.shed += 1  # before any work: the replica keeps its latency
                status, headers, body = SHED
            else:
                try:
                    status, headers, body = await handler(self, scope, request_headers)
                except Exception:
                    access_log.exception("unexpected error answering %s", route,
                                         extra={"request_id": request_id})  # fmt: skip
                    status, headers, body = 500, [PROBLEM], INTERNAL_ERROR
            headers = [*headers, (REQUEST_ID, request_id), NO_SERVER]
            if self.service.draining:
                headers.append(CLOSE)
            proto.response_bytes(status, headers, body)
        finally:
            counters.in_flight -= 1
        elapsed = time.perf_counter() - started + queued
        if method not in KNOWN_METHODS:
            method = "OTHER"
        counters.requests[(method, route, status)] += 1
        counters.durations[(method, route)].observe(elapsed)
        share = self.service.settings.access_log
        if status >= 500 or (share and random.random() < share):
            self._log(scope, method, route, status, elapsed, request_id)

    def _overloaded(self) -> bool:
        """Too many /ping in the app, or requests queue in the event loop
        before the app runs (its lag stands over max_loop_lag): what waits
        there is invisible to the in-flight count, and only shedding at once
        keeps the latency of what is served."""
        settings = self.service.settings
        if self.counters.in_flight > settings.max_in_flight:
            return True
        return LOOP_LAG.standing() > settings.max_loop_lag

    def _log(
        self, scope: Scope, method: str, route: str, status: int, elapsed: float, rid: str
    ) -> None:
        planned = route == "/readyz" and self.service.draining  # a drain is not an error
        level = logging.ERROR if status >= 500 and not planned else logging.INFO
        extra = {}
        if level == logging.ERROR:
            if not self._error_lines.allow():
                return
            extra["suppressed"] = self._error_lines.take_suppressed()
        access_log.log(
            level,
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
                **extra,
            },
        )

    def _policy_responses(self, rules: Rules) -> PolicyResponses:
        """Header items and bodies of the rules' policies, rebuilt when a
        reload swaps the limiter's rules."""
        if rules is not self._rules:
            self._responses, self._rules = PolicyResponses(rules.all_policies), rules
        return self._responses

    async def ping(self, scope: Scope, headers: Headers) -> Response:
        service = self.service
        if service.fault_injection:
            fault = await self._inject_fault()
            if fault is not None:
                return fault
        identity = service.resolver.resolve(peer_address(scope.client), headers)
        limiter = service.limiter
        rules = limiter.rules  # what this request is decided by, even if a reload swaps them
        decision = limiter.check_now(THROTTLED_PATH, scope.method, identity)
        if decision is None:
            try:
                decision = await limiter.check(THROTTLED_PATH, scope.method, identity, headers)
            except StorageUnavailable:
                return 503, [PROBLEM, ("retry-after", "1")], STORAGE_DOWN
        responses = self._policy_responses(rules)
        if decision.admitted:
            return 200, [TEXT, *responses.ratelimit_headers(decision.reported)], b"pong"
        retry, body = responses.rejection(decision)
        return 429, [PROBLEM, retry, *responses.ratelimit_headers(decision.reported)], body

    async def _inject_fault(self) -> Response | None:
        """Drill faults (PINGPONG_FAULT_DELAY, PINGPONG_FAULT_ERROR_RATE)."""
        settings = self.service.settings
        if settings.fault_delay:
            await asyncio.sleep(settings.fault_delay)
        if random.random() < settings.fault_error_rate:
            return 500, [PROBLEM], problem_body(500, "injected fault (drill)")
        return None

    async def healthz(self, scope: Scope, headers: Headers) -> Response:
        return 200, [TEXT], b"ok\n"

    async def readyz(self, scope: Scope, headers: Headers) -> Response:
        if self.service.draining:
            return 503, [TEXT], b"draining\n"
        return 200, [TEXT], b"ready\n"

    async def version(self, scope: Scope, headers: Headers) -> Response:
        return 200, [JSON], self._version

    async def openapi(self, scope: Scope, headers: Headers) -> Response:
        return 200, [JSON], self._openapi

    async def metrics(self, scope: Scope, headers: Headers) -> Response:
        return 200, [("content-type", CONTENT_TYPE_LATEST)], generate_latest(self.registry)


ROUTES: dict[str, Handler] = {
    "/ping": App.ping,
    "/healthz": App.healthz,
    "/readyz": App.readyz,
    "/version": App.version,
    "/openapi.json": App.openapi,
    "/metrics": App.metrics,
}
