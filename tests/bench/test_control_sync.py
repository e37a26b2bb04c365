"""A replica's work per announced change does not grow with the overrides
stored: the same Redis commands, and the same bytes read, after one change with
2,000 stored as with 100 (bench/control_sync.py, against a real redis-server).

And setting an override is one round trip: one script call stores it, logs
the change and publishes it.

Counts, not seconds: Redis' own command stats and output byte counter are the
same whatever else the machine runs. A sync that re-read every override (as
each change once made every replica do) reads over 800 bytes per stored
override: 1.6 MB here against a few KB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import control_sync
from pingpong.config import Settings
from pingpong.service.runtime import Service
from pingpong_toolkit.redis import RedisServer

FEW, MANY, CHANGES = 100, 2000, 40


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(workdir=Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


def test_a_sync_costs_the_same_commands_and_bytes_whatever_is_stored(redis: RedisServer) -> None:
    few = control_sync.measure(redis, FEW, CHANGES)
    many = control_sync.measure(redis, MANY, CHANGES)
    # One change, one entry: the counter, the log entries since, the named keys.
    expected = {"get": 1.0, "lrange": 1.0, "hmget": 1.0}
    assert few["redis_commands_per_sync"] == expected
    assert many["redis_commands_per_sync"] == expected
    # The same bytes to within the digits of the stats read around each sync.
    assert many["redis_bytes_per_sync"] == pytest.approx(few["redis_bytes_per_sync"], rel=0.05)
    assert many["redis_bytes_per_sync"] < 10_000


PUTS = 20


async def puts_on(redis: RedisServer) -> dict[str, int]:
    """The commands Redis ran for PUTS overrides set through one replica."""
    service = Service(Settings(storage=redis.url, limit="100/second"))
    try:
        await control_sync.load(service, 1)  # the script is loaded once, on first use
        with redis.client() as inspector:
            before = control_sync.commandstats(inspector)
            await control_sync.load(service, PUTS)
            after = control_sync.commandstats(inspector)
    finally:
        await service.storage.aclose()
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def test_an_override_is_stored_and_announced_in_one_round_trip(redis: RedisServer) -> None:
    redis.cli("FLUSHALL")
    ran = asyncio.run(puts_on(redis))
    # One script call each, which also logs and publishes the change (Redis
    # counts the commands a script runs under their own names).
    assert ran["evalsha"] == PUTS
    assert ran["publish"] == PUTS and ran["incr"] == PUTS and ran["lpush"] == PUTS
