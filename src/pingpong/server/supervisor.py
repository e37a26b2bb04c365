"""Prefork: the parent binds once, spawns workers, forwards signals, and
replaces workers that die, as RestartPolicy allows; otherwise everything stops
with exit 1: a crash loop is never the answer.

Workers publish their counts to files in a shared directory (removed at exit)
so that any worker's /metrics covers them all. A worker starts with the
signals held (``signals``) and is sent a reload only once it is ready: one
asked for while it starts is forwarded when it gets there.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

from pingpong.http.internal import internal_app
from pingpong.server import signals
from pingpong.server.metrics_listener import serve_metrics
from pingpong.server.worker import WorkerSpec, worker_process
from pingpong.service.counters import Counters
from pingpong.service.workers import all_workers

log = logging.getLogger("pingpong")
POLL_SECONDS = 0.2


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


@dataclass
class WorkerProcess:
    process: BaseProcess
    ready: Event
    reload_pending: bool = False  # a SIGHUP came while it was starting
    told_to_stop: bool = False


def supervise(spec: WorkerSpec) -> None:
    """Run ``spec.settings.workers`` workers until stopped; exit 1 if they fail."""
    directory = Path(tempfile.mkdtemp(prefix="pingpong-metrics-"))
    try:
        # Every worker's counts, none of its own: bound before any worker starts.
        serve_metrics(spec.settings, internal_app(lambda: all_workers(Counters(), directory)))
        code = Supervisor(dataclasses.replace(spec, metrics_dir=directory)).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if code:
        raise SystemExit(code)


class Supervisor:
    def __init__(self, spec: WorkerSpec, policy: RestartPolicy | None = None) -> None:
        self.spec = spec
        self.policy = policy or RestartPolicy()
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[WorkerProcess] = []
        self.stopping = False

    def run(self) -> int:
        for sig in signals.LIFECYCLE:
            signal.signal(sig, self._forward)
        self.workers = [self._start() for _ in range(self.spec.settings.workers)]
        signals.release()  # held since the CLI started: handled from now on
        settings = self.spec.settings
        log.info("started %d workers on %s:%d", len(self.workers), settings.host, settings.port)
        code = 0
        while any(w.process.is_alive() for w in self.workers) or not self.stopping:
            if self.stopping:
                self._stop_all()  # also those started as the stop came
            elif not self._tend():
                self.stopping, code = True, 1
            time.sleep(POLL_SECONDS)
        self.spec.sock.close()
        if self.spec.admin is not None:
            self.spec.admin.sock.close()
        return code

    def _start(self) -> WorkerProcess:
        ready = self.context.Event()
        process = self.context.Process(target=worker_process, args=(self.spec, ready))
        with signals.held():  # the worker inherits them held
            process.start()
        return WorkerProcess(process, ready)

    def _tend(self) -> bool:
        """Forward pending reloads, replace dead workers; False: stop all."""
        for index, worker in enumerate(self.workers):
            if worker.process.is_alive():
                if worker.reload_pending and worker.ready.is_set():
                    worker.reload_pending = False
                    self._send(worker, signal.SIGHUP)
                continue
            process, was_ready = worker.process, worker.ready.is_set()
            pid, code = process.pid, process.exitcode
            if not self.policy.restart(was_ready):
                why = "too often" if was_ready else "before it was ready"
                log.error("worker %s exited with %s %s; stopping", pid, code, why)
                return False
            log.error("worker %s exited with %s; starting a new one", pid, code)
            self.workers[index] = self._start()
        return True

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        """A stop goes to every worker (a second one too: it stops at once)."""
        if sig != signal.SIGHUP:
            self.stopping = True
        for worker in self.workers:
            if sig == signal.SIGHUP and not worker.ready.is_set():
                worker.reload_pending = True
                continue
            worker.told_to_stop = worker.told_to_stop or sig != signal.SIGHUP
            self._send(worker, sig)

    def _stop_all(self) -> None:
        for worker in self.workers:
            if not worker.told_to_stop:
                worker.told_to_stop = True
                self._send(worker, signal.SIGTERM)

    @staticmethod
    def _send(worker: WorkerProcess, sig: int) -> None:
        pid = worker.process.pid
        if pid is not None and worker.process.is_alive():
            os.kill(pid, sig)
