"""The servers under test and the Redis they share, each a pinned subprocess on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.env import PEERS_DIR, REPO, peers_bin
from pingpong_toolkit.faultproxy import FaultProxy
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import eventually

ADMIT_RATE = "100000000/second"  # far above anything one worker can serve
REJECT_RATE = "1/hour"  # the first request is admitted, every later one gets 429
# Redis at a realistic distance: the toolkit's fault proxy holds every chunk this
# long, each way (a round trip of at least 2 ms, as to another zone).
FAR_DELAY = 0.001
# One CPU for the server under test, the other for wrk, Redis and the bench itself.
SERVER_CPU = "0"
LOAD_CPU = "1" if (os.cpu_count() or 1) > 1 else "0"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
# The peers on uvicorn with the settings pingpong had on it: uvloop, httptools, no extras.
UVICORN_FLAGS = (
    *("--loop", "uvloop", "--http", "httptools", "--lifespan", "on", "--log-level", "warning"),
    *("--no-access-log", "--no-server-header", "--no-proxy-headers"),
)


@dataclass(frozen=True)
class Config:
    """One server configuration of the table."""

    name: str
    family: str  # raw[-rsgi|-uvicorn] | starlette | fastapi | pingpong | slowapi | flask-limiter
    storage: str = ""  # "" (no limiter) | memory | redis | redisfar (Redis behind FAR_DELAY)
    mode: str = ""  # "" (no limiter) | admitted | rejected

    @property
    def rate(self) -> str:
        return REJECT_RATE if self.mode == "rejected" else ADMIT_RATE


def all_configs() -> list[Config]:
    """Every configuration, in the order of the table and of the rotation."""
    configs = [
        Config(name, name) for name in ("raw", "raw-rsgi", "raw-uvicorn", "starlette", "fastapi")
    ]
    for family in ("pingpong", "slowapi", "flask-limiter"):
        for storage in ("memory", "redis"):
            for mode in ("admitted", "rejected"):
                configs.append(Config(f"{family}-{storage}-{mode}", family, storage, mode))
        if family == "pingpong":
            configs.append(Config("pingpong-redisfar-admitted", family, "redisfar", "admitted"))
    return configs


def limits_rate(rate: str) -> str:
    """pingpong's ``N/<s>s`` spelled for the `limits` library (``N/<s> seconds``)."""
    count, _, period = rate.partition("/")
    if period.endswith("s") and period[:-1].isdigit():
        return f"{count}/{period[:-1]} seconds"
    return rate


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """``argv`` under ``taskset -c cpu`` (unpinned when taskset is missing)."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", cpu, *argv] if taskset else argv


def command(
    config: Config, port: int, storage_url: str, rate: str, extra: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str], Path]:
    """argv, environment and working directory that serve ``config`` on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGPONG_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    bin_dir = Path(sys.executable).parent
    if config.family == "pingpong":
        flags = f"--port {port} --limit {rate} --storage {storage_url} --drain-seconds 0"
        argv = [str(bin_dir / "pingpong"), "serve", *flags.split(), *extra]
        return argv, env, REPO
    env["BENCH_LIMIT"] = limits_rate(rate)
    env["BENCH_STORAGE"] = storage_url
    bind = ("--host", "127.0.0.1", "--port", str(port))
    if config.family in ("raw", "raw-rsgi"):  # on pingpong's own server class, repo's venv
        interface = "asgi" if config.family == "raw" else "rsgi"
        argv = [sys.executable, "-m", "raw_granian", str(port), interface]
    elif config.family == "raw-uvicorn":  # the reference figure of shared/peers.md
        argv = [str(peers_bin("python")), "-m", "uvicorn", "raw_asgi:app", *bind, *UVICORN_FLAGS]
    elif config.family == "flask-limiter":
        flags = f"--workers 1 --worker-class sync --bind 127.0.0.1:{port} --log-level warning"
        argv = [str(peers_bin("gunicorn")), *flags.split(), "flask_app:app"]
    else:
        module = {"starlette": "starlette_app", "fastapi": "fastapi_app", "slowapi": "slowapi_app"}
        app = f"{module[config.family]}:app"
        argv = [str(peers_bin("python")), "-m", "uvicorn", app, *bind, *UVICORN_FLAGS]
    return argv, env, PEERS_DIR


class Server:
    """A started server; ``stop()`` ends its process group."""

    def __init__(self, config: Config, port: int, process: Process) -> None:
        self.config = config
        self.port = port
        self.process = process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping"

    def healthy(self) -> bool:
        """GET /healthz (never throttled) answers 200."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until /healthz answers 200; a server that exits meanwhile fails at once."""
        if not eventually(lambda: self.healthy() or not self.process.alive(), timeout):
            self.stop()
            raise RuntimeError(f"{self.config.name} not ready in {timeout}s:\n{self.log_tail()}")
        if not self.process.alive():
            raise RuntimeError(f"{self.config.name} exited at start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return self.process.tail(lines)

    def stop(self) -> None:
        self.process.stop(STOP_TIMEOUT)


def start(
    config: Config,
    storage_url: str,
    logs: Path,
    rate: str | None = None,
    extra: tuple[str, ...] = (),
    wait: bool = True,
) -> Server:
    """Start ``config`` pinned to the server CPU on a free port."""
    port = free_port()
    argv, env, cwd = command(config, port, storage_url, rate or config.rate, extra)
    process = Process.start(
        config.name,
        pinned(SERVER_CPU, argv),
        log=logs / f"{config.name}-{port}.log",
        env=env,
        cwd=cwd,
        new_session=True,  # its own process group: gunicorn's worker stops with it
    )
    server = Server(config, port, process)
    if wait:
        server.wait_ready()
    return server


@contextlib.contextmanager
def running(
    config: Config,
    storage_url: str,
    logs: Path,
    rate: str | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    server = start(config, storage_url, logs, rate, extra)
    try:
        yield server
    finally:
        server.stop()


class BenchRedis:
    """The bench's own redis-server on a free port, pinned with the load generator
    (Redis plays a separate machine: the server CPU measures the server alone)."""

    def __init__(self, logs: Path) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="bench-redis-", dir=logs))
        self.server = RedisServer(workdir=workdir, prefix=pinned(LOAD_CPU, [])).start()
        self.client = self.server.client(socket_timeout=10, decode_responses=True)
        self.version = str(self.client.info("server")["redis_version"])
        self.proxy = FaultProxy(self.server.port).start()  # a thread of the bench: load CPU
        self.proxy.delay(FAR_DELAY)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def far_url(self) -> str:
        """The same Redis through the proxy: FAR_DELAY added each way."""
        return self.server.url_at(self.proxy.port)

    def reset(self) -> None:
        """Empty the data and zero INFO commandstats."""
        self.client.flushall()
        self.client.config_resetstat()

    def commands(self) -> dict[str, int]:
        """Calls per command since ``reset()``, without the bench's own commands
        (commands run inside Lua scripts are counted too, as Redis counts them)."""
        stats = self.client.info("commandstats")
        own = {"flushall", "config|resetstat", "config", "info"}
        calls: dict[str, int] = {}
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            if name not in own:
                calls[name] = int(value["calls"])
        return calls

    def stop(self) -> None:
        self.proxy.stop()
        self.client.close()
        self.server.stop()
        shutil.rmtree(self.server.workdir, ignore_errors=True)
