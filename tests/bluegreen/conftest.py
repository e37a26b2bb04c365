"""A real blue-green stack on loopback: redis-server, a blue pingpong, HAProxy.

Everything is a real process (no mocks): HAProxy from Debian, driven by
deploy/bluegreen/rollout.py through its runtime API exactly as in production.
A missing tool fails the test (``require``), it never skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Pingpong, RedisServer, free_port, require, wait_until

BLUEGREEN = REPO / "deploy" / "bluegreen"
ROLLOUT = BLUEGREEN / "rollout.py"
sys.path.insert(0, str(BLUEGREEN))

from haproxy_api import RuntimeAPI, render_config  # noqa: E402
from rollout import pid_alive  # noqa: E402

LOAD_KEY = "load-generator-key"  # its own API-key tier: a limit the load never reaches
QUOTA = 5  # per day, per client address: the quota probe's limit
# A busy CI machine can keep Redis from answering within the default 50 ms; the
# service then decides locally (on_storage_error: local, by design) and quotas
# stop being shared. These tests are about the shift, not about that fallback.
STORAGE_TIMEOUT = "2"


def config_text() -> str:
    digest = hashlib.sha256(LOAD_KEY.encode()).hexdigest()
    return f"""\
limit: {QUOTA}/day
api_keys:
  header: X-API-Key
  tiers:
    - name: load
      rate: 1000000/minute
      burst: 100000
      keys: ["sha256:{digest}"]
"""


@dataclass
class HAProxy:
    process: subprocess.Popen[bytes]
    frontend: str
    socket: str
    config: Path

    @property
    def api(self) -> RuntimeAPI:
        return RuntimeAPI(self.socket, "pingpong")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Stack:
    """Blue serving behind HAProxy, sharing ``redis``; the green slot empty."""

    redis: RedisServer
    blue: Pingpong
    haproxy: HAProxy
    config: Path
    tmp: Path
    green_pidfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.green_pidfile = self.tmp / "green.pid"

    def rollout(self, *options: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
        """Run ``rollout.py run`` against this stack: (exit code, report, output)."""
        report_dir = self.tmp / "report"
        command = [
            sys.executable, str(ROLLOUT), "run",
            "--haproxy-socket", self.haproxy.socket,
            "--blue-url", self.blue.url,
            "--blue-pid", str(self.blue.process.pid),  # type: ignore[union-attr]
            "--storage", self.redis.url,
            "--green-env", f"PINGPONG_CONFIG={self.config}",
            "--green-env", "PINGPONG_DRAIN_SECONDS=1",
            "--green-env", f"PINGPONG_STORAGE_TIMEOUT={STORAGE_TIMEOUT}",
            "--green-pidfile", str(self.green_pidfile),
            "--report-dir", str(report_dir),
            "--pause", "2", "--settle", "1", "--min-requests", "10", "--max-p99", "0.75",
            *options,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        print(output)
        report = json.loads((report_dir / "report.json").read_text())
        return done.returncode, report, output

    def green_pid(self) -> int | None:
        if not self.green_pidfile.exists():
            return None
        return int(self.green_pidfile.read_text())


def start_haproxy(tmp: Path, blue_port: int) -> HAProxy:
    binary = require("haproxy")
    port = free_port()
    sock = tmp / "haproxy.sock"
    config = tmp / "haproxy.cfg"
    config.write_text(
        render_config(
            bind=f"127.0.0.1:{port}",
            blue_addr=f"127.0.0.1:{blue_port}",
            green_addr=f"127.0.0.1:{free_port()}",
            socket_path=str(sock),
        )
    )
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (tmp / "haproxy.log").open("wb")
    process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    haproxy = HAProxy(process, f"http://127.0.0.1:{port}", str(sock), config)
    try:
        wait_until(lambda: haproxy.api.server("blue").up, 15)
    except TimeoutError:
        haproxy.stop()
        raise AssertionError((tmp / "haproxy.log").read_text()) from None
    return haproxy


def kill_pid(pid: int) -> None:
    """A green the rollout left running (promoted) or that a failure orphaned."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def stack(redis_server: RedisServer, pingpong: Any, tmp_path: Path) -> Iterator[Stack]:
    require("redis-server")
    config = tmp_path / "pingpong.yaml"
    config.write_text(config_text())
    blue = pingpong(
        "--config", str(config), "--storage", redis_server.url,
        env={"PINGPONG_SLOT": "blue", "PINGPONG_DRAIN_SECONDS": "1",
             "PINGPONG_STORAGE_TIMEOUT": STORAGE_TIMEOUT},
    )  # fmt: skip
    haproxy = start_haproxy(tmp_path, blue.port)
    built = Stack(redis_server, blue, haproxy, config, tmp_path)
    yield built
    pid = built.green_pid()
    if pid is not None:
        kill_pid(pid)
    haproxy.stop()
