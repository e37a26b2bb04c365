"""Several real replicas share one Redis: together they admit what one would."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until
from tests.loadgen import hammer
from tests.reliability.helpers import assert_shed_counted


def test_three_replicas_share_one_limit(
    pingpong: PingpongFactory, redis_server: RedisServer
) -> None:
    # A generous storage timeout: this test is about exactness, not fallbacks
    # (which would let each replica decide alone, as documented).
    slow_ok = {"PINGPONG_STORAGE_TIMEOUT": "2"}
    replicas = [
        pingpong("--storage", redis_server.url, "--limit", "100/minute", env=slow_ok)
        for _ in range(3)
    ]
    started = time.monotonic()
    codes = asyncio.run(hammer([r.url for r in replicas], 900))
    elapsed = time.monotonic() - started
    assert_shed_counted(codes, [r.url for r in replicas])
    for replica in replicas:
        assert "storage error" not in replica.output()
    # GCRA guarantee: burst + floor(elapsed / T), T = 0.6 s.
    assert 100 <= codes.count(200) <= 100 + int(elapsed / 0.6)


def test_quota_survives_moving_between_replicas(
    pingpong: PingpongFactory, redis_server: RedisServer
) -> None:
    """Blue and green share keys: a client's remaining quota moves with it."""
    blue = pingpong("--storage", redis_server.url, "--limit", "10/minute")
    green = pingpong("--storage", redis_server.url, "--limit", "10/minute")
    for _ in range(4):
        httpx.get(blue.url + "/ping")
    left_on_blue = httpx.get(blue.url + "/ping").headers["ratelimit"]
    left_on_green = httpx.get(green.url + "/ping").headers["ratelimit"]
    assert left_on_blue.split(";")[1] == "r=5"
    assert left_on_green.split(";")[1] == "r=4"


def test_workers_share_limits_and_metrics(
    pingpong: PingpongFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = pingpong(
        "--storage", redis_server.url, "--limit", "50/minute", "--workers", "2",
        env={"PINGPONG_STORAGE_TIMEOUT": "2", "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert [p.name[:17] for p in scratch.iterdir()] == ["pingpong-metrics-"]
    codes = asyncio.run(hammer([server.url], 200))
    assert codes.count(200) >= 50 and codes.count(200) <= 52

    def counted_429() -> float:
        metrics = httpx.get(server.url + "/metrics").text
        prefix = 'pingpong_http_requests_total{method="GET",route="/ping",status="429"}'
        line = next(x for x in metrics.splitlines() if x.startswith(prefix))
        return float(line.split()[-1])

    # Workers publish their counts once a second: any worker's /metrics has
    # them all within that second.
    wait_until(lambda: counted_429() == codes.count(429), 5)
    assert server.stop() == 0
    assert list(scratch.iterdir()) == []  # the workers' metrics directory is removed
