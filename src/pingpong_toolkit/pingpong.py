"""A real ``pingpong serve`` process on a free loopback port."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from pingpong_toolkit.ports import HOST, free_port
from pingpong_toolkit.processes import Process


class NotServing(RuntimeError):
    """The process exited, or never answered, before it was serving."""


def pingpong_command(explicit: str | None = None) -> list[str]:
    """``pingpong`` from the same venv as this interpreter, else from PATH."""
    if explicit:
        return [explicit]
    sibling = Path(sys.executable).with_name("pingpong")
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which("pingpong")
    if found:
        return [found]
    return [sys.executable, "-m", "pingpong"]


class Pingpong:
    """``Pingpong(["--limit", "5/minute"]).start(log_dir)``; ``url`` is its base URL.

    ``args`` come after ``--host`` and ``--port`` on the command line, so they
    win; ``env`` is added to this process's environment.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        name: str = "pingpong",
        host: str = HOST,
        port: int | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.args = list(args)
        self.env = dict(env or {})
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.command = list(command) if command else pingpong_command()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def launch(self, log: Path, *, new_session: bool = False) -> Pingpong:
        """Start it without waiting. ``new_session``: it outlives the caller's
        Ctrl-C (a promoted green keeps serving after the rollout tool exits)."""
        argv = [*self.command, "serve", "--host", self.host, "--port", str(self.port), *self.args]
        env = {**os.environ, **self.env}
        self.process = Process.start(self.name, argv, log=log, env=env, new_session=new_session)
        return self

    def start(self, log_dir: Path, timeout: float = 15.0) -> Pingpong:
        """Launch, then wait until /healthz answers 200 (stopped if it never does)."""
        self.launch(log_dir / f"{self.name}-{self.port}.log")
        try:
            self.wait_until("/healthz", timeout)
        except NotServing:
            self.stop()
            raise
        return self

    def answers(self, path: str) -> bool:
        """GET ``path`` answers 200 now."""
        try:
            return httpx.get(self.url + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_until(self, path: str, timeout: float) -> None:
        """Until GET ``path`` answers 200; a process that exits meanwhile fails at once."""
        deadline = time.monotonic() + timeout
        while not self.answers(path):
            if self.process is not None and not self.process.alive():
                raise NotServing(f"{self.name} exited before it was serving:\n{self.output()}")
            if time.monotonic() > deadline:
                raise NotServing(f"{self.name} not serving {path} in {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.process.output() if self.process else ""

    def signal(self, sig: int) -> None:
        assert self.process is not None, "not started"
        self.process.send(sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (pingpong drains, then exits 0), SIGKILL after ``timeout``."""
        if self.process is None:
            return 0
        return self.process.stop(timeout)
