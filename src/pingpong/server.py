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
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

import uvloop
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.net import SocketHolder
from granian.server.embed import Server as EmbeddedServer

from pingpong.config import Settings
from pingpong.core.storage import StorageError
from pingpong.http.admin_auth import Tokens
from pingpong.service.counters import Counters
from pingpong.service.watch import ConfigWatch
from pingpong.service.workers import WORKERS_DIR_ENV, all_workers, publish, workers_dir

if TYPE_CHECKING:  # the supervisor process never builds a Service
    from multiprocessing.synchronize import Event

    from pingpong.service import Service

log = logging.getLogger("pingpong")
GRACEFUL_SHUTDOWN_SECONDS = 30
BACKLOG = 2048
HEADER_TIMEOUT_MS = 10_000  # a client still sending its headers after 10 s is cut off
MAX_HEAD_BYTES = 48 * 1024  # request line + headers; larger heads get 431 from granian
# (hyper grows its read buffer in steps: 48 KiB is a size it enforces exactly,
# 40 KiB was enforced as 48; tests/integration/test_hostile_input.py checks the edge)


class Granian(EmbeddedServer):
    """granian's embedded server on a socket bound by pingpong. (The benchmark
    runs its reference ASGI callable on this very class.)

    It overrides ``_init_shared_socket`` and sets ``workers_kill_timeout``:
    tests/unit/test_granian_contract.py fails if a granian upgrade drops them.
    """

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


def serve(
    settings: Settings,
    loader: Callable[[], Settings],
    config_file: str | None = None,
    tokens: Tokens | None = None,
) -> None:
    sock = _listen(settings.host, settings.port, "")
    admin = None
    if settings.admin_port is not None:
        host = settings.admin_host or settings.host
        admin = Admin(_listen(host, settings.admin_port, " for admin"), tokens or Tokens())
    if settings.workers > 1:
        _supervise(settings, loader, sock, admin, config_file)
    else:
        _serve_metrics_port(settings, lambda counters: counters)
        _run_worker(settings, loader, sock, None, admin, config_file)


class Admin(NamedTuple):
    """The admin listener: bound once (by the supervisor with --workers N, whose
    workers then share it, as they share the main socket) and its tokens."""

    sock: socket.socket
    tokens: Tokens


def _listen(host: str, port: int, what: str) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise SystemExit(f"pingpong: cannot listen{what} on {host}:{port}: {exc}") from None


def bind(host: str, port: int) -> socket.socket:
    """``::`` listens on IPv4 too, as it does by default on Linux."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    return socket.create_server(
        (host, port), family=family, backlog=BACKLOG, dualstack_ipv6=dualstack
    )


def _run_worker(
    settings: Settings,
    loader: Callable[[], Settings],
    sock: socket.socket,
    ready: Event | None,
    admin: Admin | None = None,
    config_file: str | None = None,
) -> None:
    from pingpong.http.admin import AdminApp
    from pingpong.http.app import App
    from pingpong.logs import configure as configure_logging
    from pingpong.service import Service

    configure_logging(settings.log_format)
    service = Service(settings, loader, COUNTERS)
    servers = [Granian(App(service), sock)]
    if admin is not None:
        servers.append(Granian(AdminApp(service, admin.tokens), admin.sock))
    watched = Path(config_file) if config_file else None
    uvloop.run(_serve(service, servers, ready, watched))


# This process's counts: the service counts into them, /metrics (and the
# --metrics-port thread) export them.
COUNTERS = Counters()


async def _serve(
    service: Service, servers: list[Granian], ready: Event | None, watched: Path | None = None
) -> None:
    """``servers``: the public one, then the admin one if any."""
    loop = asyncio.get_running_loop()
    server = servers[0]

    def stop() -> None:
        for each in servers:
            each.stop()  # type: ignore[no-untyped-call]

    def drain() -> None:
        if service.draining:  # a second signal stops at once
            stop()
            return
        service.draining = True
        seconds = service.settings.drain_seconds
        log.info("draining for %.1f s before shutdown", seconds)
        loop.call_later(seconds, stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain)
    watch = ConfigWatch(service, watched) if watched is not None else None
    loop.add_signal_handler(signal.SIGHUP, watch.reload if watch else service.reload)
    try:
        await service.storage.ping()
    except StorageError as exc:  # serve anyway: the failure mode decides
        log.warning("storage not reachable at startup: %s", exc)
    directory = workers_dir()
    background = [asyncio.create_task(service.control.run())]
    if directory:
        background.append(asyncio.create_task(_publish(directory)))
    if watch is not None:
        background.append(asyncio.create_task(watch.run()))
    log.info("listening on %s:%d", server.bind_addr, service.settings.port)
    if len(servers) > 1:
        log.info("admin API listening on %s:%d", servers[1].bind_addr, servers[1].bind_port)
    if ready is not None:
        ready.set()
    results = await asyncio.gather(*(each.serve() for each in servers), return_exceptions=True)
    for result in results:
        if isinstance(result, TimeoutError):
            log.warning("in-flight requests cut off after %d s", GRACEFUL_SHUTDOWN_SECONDS)
        elif isinstance(result, BaseException):
            raise result
    for task in background:
        task.cancel()
    await service.storage.aclose()
    if directory:
        publish(COUNTERS, directory)
    log.info("stopped")


async def _publish(directory: Path) -> None:
    """Workers (--workers N) share their counts once a second."""
    while True:
        publish(COUNTERS, directory)
        await asyncio.sleep(1.0)


def _serve_metrics_port(settings: Settings, source: Callable[[Counters], Counters]) -> None:
    """/metrics on its own port, from prometheus_client's server thread."""
    if settings.metrics_port is None:
        return
    from prometheus_client import start_http_server

    from pingpong.http.prometheus import registry_for

    registry = registry_for(lambda: source(COUNTERS))
    try:
        start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    except OSError as exc:
        raise SystemExit(
            f"pingpong: cannot listen for metrics on {settings.host}:{settings.metrics_port}: {exc}"
        ) from None


class RestartPolicy:
    """Whether to replace a dead worker: never one that died before it was
    ready (its config or environment cannot work: restarting would loop), and
    not more than ``per_minute`` times a minute."""

    def __init__(self, per_minute: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._deaths: list[float] = []

    def restart(self, was_ready: bool) -> bool:
        now = self._clock()
        self._deaths = [t for t in self._deaths if now - t < 60] + [now]
        return was_ready and len(self._deaths) <= self._per_minute


def _supervise(
    settings: Settings,
    loader: Callable[[], Settings],
    sock: socket.socket,
    admin: Admin | None,
    config_file: str | None,
) -> None:
    """Prefork: the parent binds once, spawns workers, forwards signals, and
    replaces workers that die, as RestartPolicy allows; otherwise everything
    stops with exit 1: a crash loop is never the answer. Workers publish their metrics to files in
    a shared directory (removed at exit) so that any worker's /metrics covers
    them all."""
    directory = tempfile.mkdtemp(prefix="pingpong-metrics-")
    os.environ[WORKERS_DIR_ENV] = directory
    try:
        code = _run_workers(settings, loader, sock, Path(directory), admin, config_file)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if code:
        raise SystemExit(code)


def _run_workers(
    settings: Settings,
    loader: Callable[[], Settings],
    sock: socket.socket,
    directory: Path,
    admin: Admin | None,
    config_file: str | None,
) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False
    policy = RestartPolicy()

    def start() -> tuple[multiprocessing.process.BaseProcess, Event]:
        ready = context.Event()
        process = context.Process(
            target=_run_worker, args=(settings, loader, sock, ready, admin, config_file)
        )
        process.start()
        return process, ready

    workers = [start() for _ in range(settings.workers)]
    _serve_metrics_port(settings, lambda counters: all_workers(counters, directory))
    log.info("started %d workers on %s:%d", len(workers), settings.host, settings.port)

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if sig != signal.SIGHUP:
            stopping = True
        for worker, _ in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    code = 0
    while any(w.is_alive() for w, _ in workers) or not stopping:
        for index, (worker, ready) in enumerate(workers):
            if worker.is_alive() or stopping:
                continue
            if not policy.restart(ready.is_set()):
                log.error(
                    "worker %s exited with %s %s; stopping", worker.pid, worker.exitcode,
                    "before it was ready" if not ready.is_set() else "too often",
                )  # fmt: skip
                forward(signal.SIGTERM, None)
                code = 1
                break
            log.error("worker %s exited with %s; starting a new one", worker.pid, worker.exitcode)
            workers[index] = start()
        time.sleep(0.2)
    sock.close()
    if admin is not None:
        admin.sock.close()
    return code
