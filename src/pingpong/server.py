"""Runs the ASGI app on uvicorn (uvloop + httptools), with a graceful drain.

On SIGTERM the service first reports not-ready (/readyz 503) and answers
``Connection: close`` for ``drain_seconds``, so load balancers take it out of
rotation while it still serves, and only then stops accepting and lets the
in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from pingpong.config import Settings
from pingpong.http.protocol import GuardedHttpToolsProtocol
from pingpong.metrics import WORKERS_DIR_ENV

log = logging.getLogger("pingpong")
GRACEFUL_SHUTDOWN_SECONDS = 30


def uvicorn_config(settings: Settings, app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # client identity is the limiter's job (trusted proxies)
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_config=None,
    )


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], float]) -> None:
        super().__init__(config)
        self._on_drain = on_drain  # marks the service draining, returns the drain time
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._loop is None:
            super().handle_exit(sig, frame)  # a second signal stops at once
            return
        self._draining = True
        seconds = self._on_drain()
        log.info("signal %s: draining for %.1f s before shutdown", sig, seconds)
        self._loop.call_soon_threadsafe(self._loop.call_later, seconds, self._stop)

    def _stop(self) -> None:
        self.should_exit = True


def serve(settings: Settings, loader: Callable[[], Settings]) -> None:
    if settings.workers > 1:
        _supervise(settings, loader)
    else:
        _run_worker(settings, loader, None)


def _run_worker(
    settings: Settings, loader: Callable[[], Settings], sock: socket.socket | None
) -> None:
    from pingpong.http.app import App
    from pingpong.logs import configure as configure_logging
    from pingpong.service import Service

    configure_logging(settings.log_format)
    service = Service(settings, loader)

    def drain() -> float:
        service.draining = True
        return settings.drain_seconds

    server = DrainingServer(uvicorn_config(settings, App(service)), drain)
    if settings.metrics_port is not None and sock is None:
        serve_metrics_port(settings)
    server.run(sockets=[sock] if sock else None)


def serve_metrics_port(settings: Settings) -> None:
    """/metrics on its own port, from prometheus_client's server thread."""
    from prometheus_client import start_http_server

    assert settings.metrics_port is not None
    start_http_server(settings.metrics_port, addr=settings.host)


def _supervise(settings: Settings, loader: Callable[[], Settings]) -> None:
    """Prefork: the parent binds once, spawns workers, forwards signals, and
    replaces workers that die. Workers publish their metrics to files in a
    shared directory so that any worker's /metrics covers them all."""
    os.environ[WORKERS_DIR_ENV] = tempfile.mkdtemp(prefix="pingpong-metrics-")
    sock = uvicorn_config(settings, None).bind_socket()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_run_worker, args=(settings, loader, sock))
        process.start()
        return process

    workers = [start() for _ in range(settings.workers)]
    if settings.metrics_port is not None:
        serve_metrics_port(settings)
    log.info("started %d workers on %s:%d", len(workers), settings.host, settings.port)

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if sig != signal.SIGHUP:
            stopping = True
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while any(w.is_alive() for w in workers) or not stopping:
        for index, worker in enumerate(workers):
            if not worker.is_alive() and not stopping:
                log.error(
                    "worker %s exited with %s; starting a new one", worker.pid, worker.exitcode
                )
                workers[index] = start()
        time.sleep(0.2)
    sock.close()
