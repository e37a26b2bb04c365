"""/metrics and /version on their own port (``metrics_port``), from a WSGI
server thread (prometheus_client's). Bound before any worker is spawned, so
that a taken port is one message and exit 1, not a server that starts half-way."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer

from pingpong.config import Settings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are counted, not logged."""


def serve_metrics(settings: Settings, app: WSGIApplication) -> None:
    """``app``: pingpong.http.internal's, over the counts to show."""
    if settings.metrics_port is None:
        return
    host, port = settings.host, settings.metrics_port

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = make_server(host, port, app, Server, handler_class=_Quiet)
    except OSError as exc:
        raise SystemExit(f"pingpong: cannot listen for metrics on {host}:{port}: {exc}") from None
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()
