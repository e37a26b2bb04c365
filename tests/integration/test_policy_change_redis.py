"""Policy changes on a real Redis (the Lua side of state translation)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pingpong.config import Settings
from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, StorageOptions
from pingpong.core.storage.redis.standalone import RedisStorage, redis_key
from pingpong.http.app import App
from pingpong.service import Service
from tests.unit.rsgi import call
from tests.unit.test_policy_change import bound, limits, max_wait_us


def redis(url: str) -> RedisStorage:
    storage = RedisStorage.from_url(url, StorageOptions(timeout=2.0))
    assert isinstance(storage, RedisStorage)
    return storage


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(limits, st.lists(st.sampled_from([0, 0, 0, 0.02, 0.1]), max_size=15)),
        min_size=2,
        max_size=4,
    )
)
def test_random_policy_changes_on_redis(redis_server: Any, segments: list[Any]) -> None:
    async def run() -> None:
        storage = redis(redis_server.url)
        key = f"prop-{time.monotonic_ns()}:c"
        try:
            for limit, pauses in segments:
                start = time.time_ns() // 1000
                admitted = 0
                for pause in pauses:
                    await asyncio.sleep(pause)
                    outcome = (await storage.acquire([Check(key, limit, False)]))[0]
                    admitted += outcome.admitted
                    assert 0 <= outcome.remaining <= limit.capacity
                    if not outcome.admitted:
                        assert 0 < outcome.retry_us <= max_wait_us(limit)
                        assert outcome.reset_us >= outcome.retry_us
                end = time.time_ns() // 1000 + 1000  # Redis read its clock a little later
                assert admitted <= bound(limit, start - 1000, end)
        finally:
            await storage.aclose()

    asyncio.run(run())


async def test_an_exhausted_client_stays_throttled_across_algorithms(redis_server: Any) -> None:
    storage = redis(redis_server.url)
    key = "switch:c"
    try:
        for algorithm in (Algorithm.GCRA, Algorithm.FIXED_WINDOW, Algorithm.SLIDING_WINDOW,
                          Algorithm.GCRA):  # fmt: skip
            limit = Limit(algorithm, Rate(3, 3600), 3)
            outcomes = [(await storage.acquire([Check(key, limit, False)]))[0] for _ in range(4)]
            assert sum(o.admitted for o in outcomes) <= 3
        # Whatever came last, the client is out of quota, and honestly told so.
        limit = Limit(Algorithm.GCRA, Rate(3, 3600), 3)
        last = await storage.acquire([Check(key, limit, False)])
        assert not last[0].admitted and last[0].retry_us <= 1200 * 10**6
    finally:
        await storage.aclose()


async def test_a_foreign_value_under_our_key_is_replaced_not_an_error(redis_server: Any) -> None:
    redis_server.cli("HSET", redis_key("legacy:c"), "s", "1")
    redis_server.cli("SET", redis_key("garbled:c"), "not-a-state")
    storage = redis(redis_server.url)
    limit = Limit(Algorithm.SLIDING_WINDOW, Rate(2, 60), 2)
    try:
        for key in ("legacy:c", "garbled:c"):
            outcome = (await storage.acquire([Check(key, limit, False)]))[0]
            assert outcome.admitted and outcome.remaining == 1
    finally:
        await storage.aclose()


async def test_reloads_between_algorithms_never_open_the_breaker(redis_server: Any) -> None:
    """gcra -> fixed-window -> sliding-window -> gcra on live keys: only 200/429,
    honest Retry-After, no storage error, the breaker stays closed."""
    service = Service(Settings.model_validate({"storage": redis_server.url, "limit": "3/minute"}))
    app = App(service)
    for algorithm in ("gcra", "fixed-window", "sliding-window", "gcra"):
        service.apply(Settings.model_validate(
            {"storage": redis_server.url, "limit": "3/minute", "algorithm": algorithm}
        ))  # fmt: skip
        for _ in range(5):
            answer = await call(app, "/ping")
            assert answer.status in (200, 429)
            if answer.status == 429:
                assert 1 <= int(answer.headers["retry-after"]) <= 120
    assert not service.counters.storage_errors
    assert service.counters.circuit_open["redis"] == 0
    await service.storage.aclose()


async def test_loosening_by_reload_frees_a_throttled_client(redis_server: Any) -> None:
    values = {"storage": redis_server.url, "limit": "1/minute"}
    service = Service(Settings.model_validate(values))
    app = App(service)
    assert (await call(app, "/ping")).status == 200
    assert (await call(app, "/ping")).status == 429
    service.apply(Settings.model_validate({**values, "limit": "100/second"}))
    answer = await call(app, "/ping")
    assert answer.status == 200
    assert answer.headers["ratelimit-policy"] == '"default";q=100;w=1'
    await service.storage.aclose()
