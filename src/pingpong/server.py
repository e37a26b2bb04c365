"""Runs the app on granian (Rust HTTP/1.1, RSGI) in our own uvloop, with a drain.

granian is embedded rather than run as a CLI so that this process owns the
event loop and the signals: on SIGTERM the service first reports not-ready
(/readyz 503) and answers ``Connection: close`` for ``drain_seconds``, so load
balancers take it out of rotation while it still serves, and only then does
granian stop accepting and let the in-flight requests finish. The socket is
bound here, without SO_REUSEPORT, so a second instance on a taken port fails
instead of silently sharing it, and prefork workers share the one socket.
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
from typing import TYPE_CHECKING, Any

import uvloop
from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server as EmbeddedServer

from pingpong.config import Settings
from pingpong.core.storage import StorageError
from pingpong.metrics import WORKERS_DIR_ENV, write_worker_file

if TYPE_CHECKING:  # the supervisor process never builds a Service
    from pingpong.service import Service

log = logging.getLogger("pingpong")
GRACEFUL_SHUTDOWN_SECONDS = 30
BACKLOG = 2048
HEADER_TIMEOUT_MS = 10_000  # a client still sending its headers after 10 s is cut off
MAX_HEAD_BYTES = 40 * 1024  # request line + headers; larger heads get 431 from granian


class Granian(EmbeddedServer):
    """granian's embedded server on a socket bound by pingpong. (The benchmark
    runs its reference ASGI callable on this very class.)"""

    def __init__(
        self, app: Any, sock: socket.socket, interface: Interfaces = Interfaces.RSGI
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(
            app,
            address=host,
            port=port,
            interface=interface,
            http=HTTPModes.http1,
            websockets=False,
            backlog=BACKLOG,
            http1_settings=HTTP1Settings(
                header_read_timeout=HEADER_TIMEOUT_MS, max_buffer_size=MAX_HEAD_BYTES
            ),
            # Only set the level of granian's logger, which then goes through ours
            # (its notices, such as "embedded server is experimental", are noise here).
            log_level=LogLevels.error,
            log_dictconfig={"incremental": True, "handlers": {}, "loggers": {}},
        )
        self.workers_kill_timeout = GRACEFUL_SHUTDOWN_SECONDS
        self._fd = sock.detach()

    def _init_shared_socket(self) -> None:
        # The stub lists no constructor; the type is (fd, is_unix_socket, backlog).
        self._shd = SocketHolder(self._fd, False, BACKLOG)  # type: ignore[call-arg,assignment]


def bind(settings: Settings) -> socket.socket:
    """``::`` listens on IPv4 too, as it does by default on Linux."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    dualstack = settings.host == "::" and socket.has_dualstack_ipv6()
    return socket.create_server(
        (settings.host, settings.port), family=family, backlog=BACKLOG, dualstack_ipv6=dualstack
    )


def serve(settings: Settings, loader: Callable[[], Settings]) -> None:
    try:
        sock = bind(settings)
    except OSError as exc:
        raise SystemExit(
            f"pingpong: cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from None
    if settings.workers > 1:
        _supervise(settings, loader, sock)
    else:
        if settings.metrics_port is not None:
            serve_metrics_port(settings)
        _run_worker(settings, loader, sock)


def _run_worker(settings: Settings, loader: Callable[[], Settings], sock: socket.socket) -> None:
    from pingpong.http.app import App
    from pingpong.logs import configure as configure_logging
    from pingpong.service import Service

    configure_logging(settings.log_format)
    service = Service(settings, loader)
    uvloop.run(_serve(service, Granian(App(service), sock)))


async def _serve(service: Service, server: Granian) -> None:
    loop = asyncio.get_running_loop()

    def drain() -> None:
        if service.draining:  # a second signal stops at once
            server.stop()  # type: ignore[no-untyped-call]
            return
        service.draining = True
        seconds = service.settings.drain_seconds
        log.info("draining for %.1f s before shutdown", seconds)
        loop.call_later(seconds, server.stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain)
    loop.add_signal_handler(signal.SIGHUP, service.reload)
    try:
        await service.storage.ping()
    except StorageError as exc:  # serve anyway: the failure mode decides
        log.warning("storage not reachable at startup: %s", exc)
    publisher = asyncio.create_task(_publish_metrics()) if os.environ.get(WORKERS_DIR_ENV) else None
    log.info("listening on %s:%d", server.bind_addr, server.bind_port)
    try:
        await server.serve()
    except TimeoutError:
        log.warning("in-flight requests cut off after %d s", GRACEFUL_SHUTDOWN_SECONDS)
    if publisher is not None:
        publisher.cancel()
    await service.storage.aclose()
    write_worker_file()
    log.info("stopped")


async def _publish_metrics() -> None:
    """Workers (--workers N) share their counts once a second."""
    while True:
        write_worker_file()
        await asyncio.sleep(1.0)


def serve_metrics_port(settings: Settings) -> None:
    """/metrics on its own port, from prometheus_client's server thread."""
    from prometheus_client import start_http_server

    assert settings.metrics_port is not None
    start_http_server(settings.metrics_port, addr=settings.host)


def _supervise(settings: Settings, loader: Callable[[], Settings], sock: socket.socket) -> None:
    """Prefork: the parent binds once, spawns workers, forwards signals, and
    replaces workers that die. Workers publish their metrics to files in a
    shared directory so that any worker's /metrics covers them all."""
    os.environ[WORKERS_DIR_ENV] = tempfile.mkdtemp(prefix="pingpong-metrics-")
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
