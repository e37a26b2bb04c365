"""The RSGI app in process: routing, headers, errors, counting."""

from __future__ import annotations

import json
import logging
import re

import pytest

from pingpong.config import Settings
from pingpong.core.rates import Rate
from pingpong.http.app import App
from pingpong.service import Service
from tests.unit.rsgi import call


def app_with(**settings: object) -> App:
    return App(Service(Settings.model_validate(settings)))


async def test_ping_then_429_with_matching_headers() -> None:
    app = app_with(limit="3/10s")
    answers = [await call(app, "/ping") for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert answers[0].body == b"pong"
    assert answers[0].headers["ratelimit-policy"] == '"default";q=3;w=10'
    assert answers[0].headers["ratelimit"] == '"default";r=2;t=4'
    rejected = answers[3]
    assert rejected.headers["content-type"] == "application/problem+json"
    assert json.loads(rejected.body)["retry_after"] == int(rejected.headers["retry-after"])


async def test_quota_is_the_burst_and_remaining_never_exceeds_it() -> None:
    """q and r describe the same quota: GCRA's burst, regained in burst x T."""
    app = app_with(limit="10/minute", burst=50)
    answer = await call(app, "/ping")
    assert answer.headers["ratelimit-policy"] == '"default";q=50;w=300'
    assert answer.headers["ratelimit"].startswith('"default";r=49;')


async def test_sliding_window_t_is_never_less_than_retry_after() -> None:
    app = app_with(limit="2/10s", algorithm="sliding-window")
    answers = [await call(app, "/ping") for _ in range(3)]
    rejected = answers[-1]
    assert rejected.status == 429
    t = int(re.search(r"t=(\d+)", rejected.headers["ratelimit"]).group(1))  # type: ignore[union-attr]
    assert t >= int(rejected.headers["retry-after"])


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/nope", "GET", 404), ("/admin/v1/overrides", "GET", 404), ("/ping", "POST", 405)],
)
async def test_unknown_routes_and_methods(path: str, method: str, status: int) -> None:
    app = app_with()
    answer = await call(app, path, method)
    assert answer.status == status
    assert answer.headers["x-request-id"]


async def test_an_unexpected_error_is_a_counted_problem_500_with_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = app_with()

    class Broken:  # not a ClientResolver: the compiled handler raises TypeError
        def resolve(self, peer: str, headers: object) -> str:
            raise RuntimeError("boom")

    app.service.resolver = Broken()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, "pingpong.access"):
        answer = await call(app, "/ping", headers=[("x-request-id", "abc-123")])
    assert answer.status == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == "abc-123"
    assert json.loads(answer.body)["status"] == 500
    assert app.counters.requests[("GET", "/ping", 500)] == 1
    logged = [r for r in caplog.records if r.getMessage() == "unexpected error answering /ping"]
    assert logged and "Broken" in (logged[0].exc_text or "")


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123_x.y:z", True), ("a" * 128, True), ("a" * 129, False), ("bad id", False),
     ("x\u00e9", False), ("<script>", False)],
)  # fmt: skip
async def test_request_ids_are_echoed_only_when_plain(given: str, kept: bool) -> None:
    answer = await call(app_with(), "/healthz", headers=[("x-request-id", given)])
    assert (answer.headers["x-request-id"] == given) is kept


async def test_5xx_lines_are_bounded_and_say_how_many_were_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = app_with(fault_error_rate=1.0)
    with caplog.at_level(logging.INFO, "pingpong.access"):
        for _ in range(200):
            assert (await call(app, "/ping")).status == 500
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert 1 <= len(errors) <= 20  # 10 a second; the loop takes well under 2 s
    assert app.counters.requests[("GET", "/ping", 500)] == 200


async def test_a_planned_drain_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    app = app_with()
    app.service.draining = True
    with caplog.at_level(logging.INFO, "pingpong.access"):
        answer = await call(app, "/readyz")
    assert answer.status == 503
    assert answer.headers["connection"] == "close"
    assert [r.levelno for r in caplog.records] == [logging.INFO]


async def test_reload_swaps_the_headers_with_the_limiter() -> None:
    app = app_with(limit="3/10s")
    await call(app, "/ping")
    app.service.apply(Settings.model_validate({"limit": "5/minute"}))
    answer = await call(app, "/ping")
    assert answer.headers["ratelimit-policy"] == '"default";q=5;w=60'
    assert app.service.settings.limit == Rate(5, 60)
