"""Redis dies, comes back: no 500s, the configured mode decides, recovery is automatic."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until
from tests.loadgen import hammer
from tests.reliability.helpers import assert_shed_counted


async def statuses(url: str, n: int) -> list[int]:
    return await hammer([url], n)


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name):
            total += float(line.split()[-1])
    return total


@pytest.mark.parametrize(
    ("mode", "during"),
    [("local", {200, 429}), ("allow", {200}), ("deny", {503})],
)
def test_redis_killed_and_restarted(
    pingpong: PingpongFactory, tmp_path: Path, mode: str, during: set[int]
) -> None:
    redis = RedisServer(workdir=tmp_path / "redis").start()
    server = pingpong(
        "--storage", redis.url, "--limit", "5/second", "--burst", "20",
        "--on-storage-error", mode,
        env={"PINGPONG_CIRCUIT_RESET": "0.5"},
    )  # fmt: skip
    try:
        assert set(asyncio.run(statuses(server.url, 10))) == {200}
        redis.kill()
        started = time.monotonic()
        codes = asyncio.run(statuses(server.url, 40))
        if mode == "deny":
            assert set(codes) == during, codes
        else:  # and a 503 only when the load shedder counted it
            assert_shed_counted(codes, [server.url], during)
            assert set(codes) & during, codes
        assert time.monotonic() - started < 3  # decisions time out fast
        if mode == "local":
            assert 429 in codes  # still throttling in-process
        wait_until(lambda: metric(server.url, "pingpong_storage_circuit_open{") == 1, 5)
        redis.start()  # same port
        recovering = time.monotonic()

        def back_on_redis() -> bool:
            codes = asyncio.run(statuses(server.url, 1))
            assert set(codes) <= during | {200, 429}
            keys = redis.cli("KEYS", "pp:*").split()  # the limiter's, not the fleet's
            return any(not key.startswith("pp:{pp-admin}") for key in keys)

        wait_until(back_on_redis, 10)  # decisions reach Redis again, by themselves
        assert time.monotonic() - recovering < 3  # within a breaker reset or two
        wait_until(lambda: metric(server.url, "pingpong_storage_circuit_open{") == 0, 5)
        assert metric(server.url, f'pingpong_storage_fallbacks_total{{mode="{mode}"}}') > 0
        assert "Traceback" not in server.output()
    finally:
        redis.stop()


def test_starts_while_redis_is_down(pingpong: PingpongFactory) -> None:
    server = pingpong("--storage", f"redis://127.0.0.1:{free_port()}/0", "--limit", "2/minute")
    assert asyncio.run(statuses(server.url, 1)) == [200]
    assert httpx.get(server.url + "/readyz").status_code == 200


async def test_deny_mode_survives_a_redis_restart_without_a_503(
    redis_server: RedisServer,
) -> None:
    """A pooled connection is stale after Redis restarts: the first decision
    retries once on a fresh connection instead of answering 503."""
    from pingpong.config import Settings
    from pingpong.http.app import App
    from pingpong.service import Service
    from tests.unit.rsgi import call

    service = Service(Settings.model_validate(
        {"storage": redis_server.url, "on_storage_error": "deny", "storage_timeout": 1.0}
    ))  # fmt: skip
    app = App(service)
    assert (await call(app, "/ping")).status == 200
    redis_server.restart()
    assert (await call(app, "/ping")).status == 200
    assert not service.counters.storage_errors
    await service.storage.aclose()
