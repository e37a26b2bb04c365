"""The internal listener (``metrics_port``): ``/metrics`` and ``/version``,
for Prometheus and the deploy tooling, never on the port the load balancer
exposes. A WSGI app: prometheus_client's own server thread runs it, in the
supervisor too, which builds no Service (``/version`` is read from the
counts' build labels, which every worker publishes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import make_wsgi_app

from pingpong.http.prometheus import registry_for
from pingpong.http.rsgi import JSON, NO_SERVER, TEXT
from pingpong.service.counters import Counters

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

INTERNAL_PATHS = ("/metrics", "/version")


def version_body(build: tuple[str, str, str]) -> bytes:
    """``/version``: what runs (``Counters.build``'s labels)."""
    return json.dumps(dict(zip(("version", "commit", "slot"), build, strict=True))).encode()


def internal_app(source: Callable[[], Counters]) -> WSGIApplication:
    """``source``: the counts to show (with --workers N, every worker's)."""
    metrics = make_wsgi_app(registry_for(source))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def respond(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, NO_SERVER], *exc)

        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path not in INTERNAL_PATHS:
            respond("404 Not Found", [TEXT])
            return [b"not found\n"]
        if method not in ("GET", "HEAD"):
            respond("405 Method Not Allowed", [TEXT, ("allow", "GET, HEAD")])
            return [b"method not allowed\n"]
        if path == "/metrics":
            return metrics(environ, respond)  # type: ignore[no-any-return]
        build = source().build
        if not any(build):  # no worker has published yet
            respond("503 Service Unavailable", [TEXT, ("retry-after", "1")])
            return [b"starting\n"]
        respond("200 OK", [JSON])
        return [version_body(build)]

    return app
