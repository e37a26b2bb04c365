"""/metrics on its own port (``metrics_port``), from prometheus_client's
server thread. Bound before any worker is spawned, so that a taken port is one
message and exit 1, not a server that starts half-way."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from pingpong.config import Settings


def serve_metrics(settings: Settings, registry: CollectorRegistry) -> None:
    if settings.metrics_port is None:
        return
    try:
        start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    except OSError as exc:
        raise SystemExit(
            f"pingpong: cannot listen for metrics on {settings.host}:{settings.metrics_port}: {exc}"
        ) from None
