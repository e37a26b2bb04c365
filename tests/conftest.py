"""Shared fixtures: real redis-server processes and real pingpong servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(tool: str) -> str:
    """A tool the suite needs: missing means failing, never skipping."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; .ci/run installs it (see README)")
    return path


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: S110 - not ready yet
            pass
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


@dataclass
class RedisServer:
    port: int
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = require("redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self.cli("PING") == "PONG")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def cli(self, *command: str) -> str:
        out = subprocess.run(
            [require("redis-cli"), "-p", str(self.port), *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class Pingpong:
    """A real `pingpong serve` process on a free loopback port."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, tmp: Path) -> Pingpong:
        self.log = tmp / f"pingpong-{self.port}.log"
        env = {**os.environ, "PINGPONG_DRAIN_SECONDS": "0", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pingpong.cli", "serve", "--port", str(self.port), *self.args],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: httpx.get(self.url + "/healthz").status_code == 200, 15)
        except TimeoutError:
            raise AssertionError(f"pingpong did not start:\n{self.output()}") from None
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@pytest.fixture
def pingpong(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Factory: pingpong(*args, env={...}) starts a server, stopped afterwards."""
    started: list[Pingpong] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Pingpong:
        server = Pingpong(list(args), env or {}).start(tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def pingpong_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pingpong]:
    """One server for read-only contract tests."""
    server = Pingpong(["--limit", "1000/second"]).start(tmp_path_factory.mktemp("shared"))
    yield server
    server.stop()
