"""A real blue-green stack on loopback: redis-server, a blue pingpong, HAProxy.

Everything is a real process (no mocks): HAProxy from Debian, driven by
``pingpong-rollout`` through its runtime API exactly as in production.
A missing tool fails the test, it never skips.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pingpong_rollout.haproxy_config import render_config
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.haproxy import HAProxy
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.redis import RedisServer

LOAD_KEY = "load-generator-key"  # its own API-key tier: a limit the load never reaches
QUOTA = 5  # per day, per client address: the quota probe's limit
# A busy CI machine can keep Redis from answering within the default 50 ms; the
# service then decides locally (on_storage_error: local, by design) and quotas
# stop being shared. These tests are about the shift, not about that fallback.
STORAGE_TIMEOUT = "2"


def rollout_command() -> list[str]:
    """The installed console script, from this interpreter's venv when there."""
    sibling = Path(sys.executable).with_name("pingpong-rollout")
    found = str(sibling) if sibling.exists() else shutil.which("pingpong-rollout")
    assert found, "pingpong-rollout is not installed: pip install -e ."
    return [found]


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
class Stack:
    """Blue serving behind HAProxy, sharing ``redis``; the green slot empty."""

    redis: RedisServer
    blue: Pingpong
    haproxy: HAProxy
    frontend: str
    config: Path
    tmp: Path
    green_pidfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.green_pidfile = self.tmp / "green.pid"

    @property
    def blue_process(self) -> Process:
        assert self.blue.process is not None
        return self.blue.process

    def rollout(self, *options: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
        """Run ``pingpong-rollout run`` against this stack: (exit code, report, output)."""
        report_dir = self.tmp / "report"
        command = [
            *rollout_command(), "run",
            "--haproxy-socket", self.haproxy.api.address,
            "--blue-url", self.blue.url,
            "--blue-pid", str(self.blue_process.pid),
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
        report: dict[str, Any] = json.loads((report_dir / "report.json").read_text())
        return done.returncode, report, output

    def green(self) -> Process | None:
        """The green the rollout started (its pidfile), if any."""
        if not self.green_pidfile.exists():
            return None
        return Process.adopt("green", int(self.green_pidfile.read_text()))


def start_haproxy(tmp: Path, blue_port: int) -> tuple[HAProxy, str]:
    """HAProxy from deploy/bluegreen's template, blue up; (it, frontend URL)."""
    port = free_port()
    sock = str(tmp / "haproxy.sock")
    config = render_config(
        bind=f"127.0.0.1:{port}",
        blue_addr=f"127.0.0.1:{blue_port}",
        green_addr=f"127.0.0.1:{free_port()}",
        socket_path=sock,
    )
    haproxy = HAProxy.start(config, tmp / "haproxy", sock, "pingpong")
    try:
        haproxy.wait_up("blue")
    except Exception:
        haproxy.stop()
        raise
    return haproxy, f"http://127.0.0.1:{port}"


@pytest.fixture
def stack(redis_server: RedisServer, pingpong: PingpongFactory, tmp_path: Path) -> Iterator[Stack]:
    config = tmp_path / "pingpong.yaml"
    config.write_text(config_text())
    blue = pingpong(
        "--config", str(config), "--storage", redis_server.url,
        env={"PINGPONG_SLOT": "blue", "PINGPONG_DRAIN_SECONDS": "1",
             "PINGPONG_STORAGE_TIMEOUT": STORAGE_TIMEOUT},
    )  # fmt: skip
    haproxy, frontend = start_haproxy(tmp_path, blue.port)
    built = Stack(redis_server, blue, haproxy, frontend, config, tmp_path)
    yield built
    green = built.green()
    if green is not None:  # promoted (left running), or orphaned by a failure
        green.stop(10)
    haproxy.stop()
