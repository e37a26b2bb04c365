"""A real server's life: signals that arrive while it starts are applied once it
can handle them (never its death), a config file caught mid-write is never a
reload, and a startup error is one message and one exit code, workers or not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.fixtures import TEST_ENV, PingpongFactory
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.processes import children, pid_alive
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until


def reloads(url: str, result: str) -> float:
    series = f'pingpong_config_reloads_total{{result="{result}"}}'
    text = httpx.get(url + "/metrics").text
    return float(next(line for line in text.splitlines() if line.startswith(series)).split()[-1])


@pytest.fixture
def launched() -> Iterator[list[Pingpong]]:
    """Servers launched without waiting for them (the tests signal them mid-start)."""
    servers: list[Pingpong] = []
    yield servers
    for server in servers:
        server.stop()


def launch(servers: list[Pingpong], log: Path, *args: str) -> tuple[Pingpong, float]:
    server = Pingpong(args, TEST_ENV)
    servers.append(server)
    server.launch(log)
    return server, time.monotonic()


def signal_at(server: Pingpong, started: float, offsets: list[float], sig: int) -> None:
    for offset in offsets:
        time.sleep(max(0.0, started + offset - time.monotonic()))
        server.signal(sig)


def workers_of(server: Pingpong) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    assert server.process is not None
    return [pid for pid, argv in children(server.process.pid) if "spawn_main" in argv]


def test_a_sighup_while_one_process_starts_is_a_reload_not_its_death(
    launched: list[Pingpong], tmp_path: Path
) -> None:
    server, started = launch(launched, tmp_path / "one.log", "--limit", "3/minute")
    signal_at(server, started, [0.3], signal.SIGHUP)
    server.wait_until("/healthz", 15)
    # Held until the handler was installed, then applied: one reload, not zero.
    wait_until(lambda: reloads(server.url, "ok") == 1, 5)
    assert server.stop() == 0


def test_sighups_while_workers_start_reload_them_and_kill_nothing(
    launched: list[Pingpong], redis_server: RedisServer, tmp_path: Path
) -> None:
    server, started = launch(
        launched, tmp_path / "workers.log", "--workers", "2", "--storage", redis_server.url
    )
    signal_at(server, started, [1.0, 1.25, 1.5], signal.SIGHUP)
    server.wait_until("/healthz", 20)
    time.sleep(1.0)  # a worker killed by the signal would stop the server by now
    assert server.process is not None and server.process.alive(), server.output()
    assert len(workers_of(server)) == 2
    assert "exited" not in server.output()
    assert server.stop() == 0


def test_a_sighup_after_a_worker_was_killed_spares_its_replacement(
    launched: list[Pingpong], redis_server: RedisServer, tmp_path: Path
) -> None:
    server, _ = launch(
        launched, tmp_path / "respawn.log", "--workers", "2", "--storage", redis_server.url
    )
    wait_until(lambda: server.output().count("listening on") == 2, 30)  # both ready
    victim = workers_of(server)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in workers_of(server) and len(workers_of(server)) == 2, 5)
    time.sleep(0.5)
    server.signal(signal.SIGHUP)
    # Both workers reload: the replacement once it is ready (counts are shared once a second).
    wait_until(lambda: reloads(server.url, "ok") == 2, 10)
    assert server.process is not None and server.process.alive(), server.output()
    assert server.output().count("starting a new one") == 1, server.output()
    assert "stopping" not in server.output()
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert server.stop() == 0


def test_workers_stop_when_their_supervisor_is_killed(
    launched: list[Pingpong], redis_server: RedisServer, tmp_path: Path
) -> None:
    server, _ = launch(
        launched, tmp_path / "orphans.log", "--workers", "2", "--storage", redis_server.url
    )
    wait_until(lambda: server.output().count("listening on") == 2, 30)
    workers = workers_of(server)
    assert len(workers) == 2
    assert server.process is not None
    server.process.kill()  # no drain, no forwarding: the supervisor is just gone
    try:
        wait_until(lambda: not any(pid_alive(pid) for pid in workers), 10)
    finally:  # leave no orphan behind, even when the test fails
        for pid in filter(pid_alive, workers):
            os.kill(pid, signal.SIGKILL)
    assert server.output().count("the supervisor (pid") == 2, server.output()


@pytest.mark.parametrize(
    ("caught", "why"),
    [
        ("", "is empty"),
        ("# only a comment so far\n", "is empty"),
        ("policies:\n  - name: strict\n    rate: 2/min", "invalid rate '2/min'"),
        ("policies:\n  - {name: strict, rate: 2/minute", "invalid YAML"),
    ],
    ids=["empty", "comment-only", "cut-mid-value", "cut-mid-flow"],
)
def test_a_file_caught_mid_write_is_refused_and_the_old_config_kept(
    pingpong: PingpongFactory, tmp_path: Path, caught: str, why: str
) -> None:
    config = tmp_path / "pingpong.yaml"
    full = "policies:\n  - {name: strict, rate: 2/minute}\n"
    config.write_text(full)
    server = pingpong("--config", str(config))
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"strict";q=2;w=60'
    config.write_text(caught)
    server.signal(signal.SIGHUP)
    wait_until(lambda: reloads(server.url, "error") == 1, 5)
    assert "config reload refused" in server.output()
    assert why in server.output()
    assert reloads(server.url, "ok") == 0
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"strict";q=2;w=60'
    config.write_text(full.replace("2/minute", "5/minute"))  # the write completes
    wait_until(lambda: reloads(server.url, "ok") == 1, 5)  # and the watcher applies it
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"strict";q=5;w=60'


def test_a_taken_metrics_port_with_workers_is_one_message_and_exit_1(
    redis_server: RedisServer,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pingpong", "serve", "--port", str(free_port()),
             "--workers", "2", "--storage", redis_server.url, "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count(f"cannot listen for metrics on 127.0.0.1:{port}") == 1, output
    assert "Traceback" not in output
    assert "worker" not in output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_sigterm_while_starting_is_a_clean_stop(
    launched: list[Pingpong], redis_server: RedisServer, tmp_path: Path, workers: str
) -> None:
    server, started = launch(
        launched, tmp_path / "stop.log", "--workers", workers, "--storage", redis_server.url
    )
    signal_at(server, started, [0.3 if workers == "1" else 1.2], signal.SIGTERM)
    assert server.process is not None
    assert server.process.wait(20) == 0, server.output()
    # Each process held the signal until it could drain: each says it stopped.
    assert server.output().count('"stopped"') == int(workers), server.output()
