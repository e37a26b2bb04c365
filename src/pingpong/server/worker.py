"""One worker's life: its own uvloop, the signals, the drain, the config watch.

On SIGTERM the service first reports not-ready (/readyz 503) and answers
``Connection: close`` for ``drain_seconds``, so load balancers take it out of
rotation while it still serves; only then does granian stop accepting and let
the in-flight requests finish. A second SIGTERM (or Ctrl-C) stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import uvloop

from pingpong.config import Build, Settings
from pingpong.core.looplag import LOOP_LAG
from pingpong.core.storage import StorageError
from pingpong.http.admin_auth import Tokens
from pingpong.http.prometheus import registry_for
from pingpong.server import signals
from pingpong.server.granian_server import GRACEFUL_SHUTDOWN_SECONDS, Granian
from pingpong.service.counters import Counters
from pingpong.service.watch import ConfigWatch
from pingpong.service.workers import all_workers, publish

if TYPE_CHECKING:  # the supervisor imports this module but never builds a Service
    from multiprocessing.synchronize import Event

    from pingpong.service import Service

log = logging.getLogger("pingpong")
PUBLISH_SECONDS = 1.0
SUPERVISOR_CHECK_SECONDS = 0.5


class Admin(NamedTuple):
    """The admin listener: bound once (by the supervisor with --workers N, whose
    workers then share it, as they share the main socket) and its tokens."""

    sock: socket.socket
    tokens: Tokens


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is started from; picklable, for spawned workers."""

    settings: Settings
    loader: Callable[[], Settings]
    sock: socket.socket
    admin: Admin | None = None
    config_file: Path | None = None
    build: Build = field(default_factory=Build)
    # --workers N: where the workers publish their counts for each other.
    metrics_dir: Path | None = None


def worker_process(spec: WorkerSpec, ready: Event) -> None:
    """A spawned worker's entry point (it starts with the signals held)."""
    run_worker(spec, Counters(), ready, supervisor=os.getppid())


def run_worker(
    spec: WorkerSpec,
    counters: Counters,
    ready: Event | None = None,
    supervisor: int | None = None,
) -> None:
    """Serve until stopped. ``counters`` are this process's counts;
    ``supervisor``: the pid of the process that spawned this worker."""
    from pingpong.http.admin import AdminApp
    from pingpong.http.app import App
    from pingpong.logs import configure as configure_logging
    from pingpong.service import Service

    configure_logging(spec.settings.log_format)
    service = Service(spec.settings, spec.loader, counters, spec.build)
    registry = registry_for(lambda: all_workers(counters, spec.metrics_dir))
    servers = [Granian(App(service, registry), spec.sock)]
    if spec.admin is not None:
        servers.append(Granian(AdminApp(service, spec.admin.tokens), spec.admin.sock))
    tokens = spec.admin.tokens if spec.admin is not None else None
    worker = Worker(service, servers, spec.metrics_dir, spec.config_file, tokens, supervisor)
    uvloop.run(worker.run(ready))


class Worker:
    """``servers``: the public one, then the admin one if any."""

    def __init__(
        self,
        service: Service,
        servers: list[Granian],
        metrics_dir: Path | None,
        config_file: Path | None,
        tokens: Tokens | None = None,
        supervisor: int | None = None,
    ) -> None:
        self.service = service
        self.tokens = tokens  # the admin API's: SIGHUP re-reads them too
        self.servers = servers
        self.metrics_dir = metrics_dir
        self.supervisor = supervisor
        self.watch = ConfigWatch(service, config_file) if config_file is not None else None

    async def run(self, ready: Event | None) -> None:
        self._install_signals()
        signals.release()  # a signal held since the start is delivered now
        LOOP_LAG.observers.append(self.service.counters.loop_lagged)
        LOOP_LAG.ensure_started()  # the SLI counts the loop's lag (http.app)
        try:
            await self.service.storage.ping()
        except StorageError as exc:  # serve anyway: the failure mode decides
            log.warning("storage not reachable at startup: %s", exc)
        background = self._start_background()
        self._log_listening()
        if ready is not None:
            ready.set()
        results = await asyncio.gather(
            *(each.serve() for each in self.servers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, TimeoutError):
                log.warning("in-flight requests cut off after %d s", GRACEFUL_SHUTDOWN_SECONDS)
            elif isinstance(result, BaseException):
                raise result
        for task in background:
            task.cancel()
        await self.service.storage.aclose()
        if self.metrics_dir is not None:
            publish(self.service.counters, self.metrics_dir)
        log.info("stopped")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._drain)
        loop.add_signal_handler(signal.SIGHUP, self._reload)

    def _reload(self) -> None:
        if self.tokens is not None:
            self.tokens.reload()
        (self.watch.reload if self.watch is not None else self.service.reload)()

    def _drain(self) -> None:
        if self.service.draining:  # a second signal stops at once
            self._stop()
            return
        self.service.draining = True
        seconds = self.service.settings.drain_seconds
        log.info("draining for %.1f s before shutdown", seconds)
        asyncio.get_running_loop().call_later(seconds, self._stop)

    def _stop(self) -> None:
        for each in self.servers:
            each.stop()  # type: ignore[no-untyped-call]

    def _start_background(self) -> list[asyncio.Task[None]]:
        background = [asyncio.create_task(self.service.control.run())]
        if self.metrics_dir is not None:
            background.append(asyncio.create_task(self._publish(self.metrics_dir)))
        if self.watch is not None:
            background.append(asyncio.create_task(self.watch.run()))
        if self.supervisor is not None:
            background.append(asyncio.create_task(self._follow_supervisor(self.supervisor)))
        return background

    async def _follow_supervisor(self, pid: int) -> None:
        """A worker whose supervisor died (SIGKILL, out of memory) drains and
        stops instead of serving on as an orphan that nothing restarts or stops
        (gunicorn's workers check the same)."""
        while True:
            await asyncio.sleep(SUPERVISOR_CHECK_SECONDS)
            if os.getppid() != pid:
                log.error("the supervisor (pid %d) is gone: stopping", pid)
                self._drain()
                return

    async def _publish(self, directory: Path) -> None:
        """Workers (--workers N) share their counts once a second."""
        while True:
            publish(self.service.counters, directory)
            await asyncio.sleep(PUBLISH_SECONDS)

    def _log_listening(self) -> None:
        public = self.servers[0]
        log.info("listening on %s:%d", public.bind_addr, self.service.settings.port)
        if len(self.servers) > 1:
            admin = self.servers[1]
            log.info("admin API listening on %s:%d", admin.bind_addr, admin.bind_port)
