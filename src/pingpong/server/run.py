"""``serve()``: bind the listeners, then run one worker here or supervise N."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pingpong.config import Build, Settings
from pingpong.http.admin_auth import Tokens
from pingpong.http.internal import internal_app
from pingpong.server.granian_server import listen
from pingpong.server.metrics_listener import serve_metrics
from pingpong.server.supervisor import supervise
from pingpong.server.worker import Admin, WorkerSpec, run_worker
from pingpong.service.counters import Counters


def serve(
    settings: Settings,
    loader: Callable[[], Settings],
    config_file: Path | None = None,
    tokens: Tokens | None = None,
    build: Build | None = None,
) -> None:
    """Every listener is bound before anything runs, so that a taken port is
    one message and exit 1."""
    sock = listen(settings.host, settings.port)
    admin = None
    if settings.admin_port is not None:
        host = settings.admin_host or settings.host
        admin = Admin(listen(host, settings.admin_port, " for admin"), tokens or Tokens())
    spec = WorkerSpec(settings, loader, sock, admin, config_file, build or Build())
    if settings.workers > 1:
        supervise(spec)
        return
    counters = Counters()
    serve_metrics(settings, internal_app(lambda: counters))
    run_worker(spec, counters)
