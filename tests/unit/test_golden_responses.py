"""The /ping answers, byte for byte: status, every header in order, the body.

The hot path builds these from precomputed pieces; this pins what a client sees
to what it saw before any of that (values whose time part could move are taken
where the clock cannot change them: a new key, a 429 right after the burst).
"""

from __future__ import annotations

import hashlib

from pingpong.config import Settings
from pingpong.http.app import App
from pingpong.service import Service
from tests.unit.rsgi import FakeHeaders, FakeScope

Raw = tuple[int, list[tuple[str, str]], bytes]
RID = ("x-request-id", "golden-1")  # a caller's id is echoed: no random part
TEXT = ("content-type", "text/plain; charset=utf-8")
PROBLEM = ("content-type", "application/problem+json")
NO_SERVER = ("server", "")  # granian's own "server: granian" would go in its place


class RawProto:
    def __init__(self) -> None:
        self.answers: list[Raw] = []

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, list(headers), body))


async def answers(settings: dict[str, object], n: int, *extra: tuple[str, str]) -> list[Raw]:
    app = App(Service(Settings.model_validate(settings)))
    proto = RawProto()
    for _ in range(n):
        scope = FakeScope("/ping", headers=FakeHeaders([RID, *extra]))
        await app(scope, proto)  # type: ignore[arg-type]
    return proto.answers


def too_many(policy: str, wait: int) -> bytes:
    return (
        '{"type":"about:blank","title":"Too Many Requests","status":429,'
        f'"detail":"rate limit of policy \'{policy}\' exceeded; retry in {wait} s",'
        f'"policy":"{policy}","retry_after":{wait}}}'
    ).encode()


async def test_one_policy_admitted_then_rejected() -> None:
    found = await answers({"limit": "3/10s"}, 4)
    assert found[0] == (
        200,
        [
            TEXT,
            ("ratelimit-policy", '"default";q=3;w=10'),
            ("ratelimit", '"default";r=2;t=4'),
            RID,
            NO_SERVER,
        ],
        b"pong",
    )
    assert found[1][1][2] == ("ratelimit", '"default";r=1;t=7')
    assert found[3] == (
        429,
        [
            PROBLEM,
            ("retry-after", "4"),
            ("ratelimit-policy", '"default";q=3;w=10'),
            ("ratelimit", '"default";r=0;t=10'),
            RID,
            NO_SERVER,
        ],
        too_many("default", 4),
    )


async def test_window_algorithms_admitted_then_rejected() -> None:
    for algorithm in ("fixed-window", "sliding-window"):
        found = await answers({"limit": "2/hour", "algorithm": algorithm}, 3)
        status, headers, body = found[0]
        assert (status, headers[:2], body) == (
            200,
            [TEXT, ("ratelimit-policy", '"default";q=2;w=3600')],
            b"pong",
        ), algorithm
        assert headers[2][1].startswith('"default";r=1;t='), algorithm
        status, headers, body = found[2]
        wait = int(headers[1][1])
        assert (status, headers[0], headers[2], body) == (
            429,
            PROBLEM,
            ("ratelimit-policy", '"default";q=2;w=3600'),
            too_many("default", wait),
        ), algorithm


async def test_several_policies_report_each_and_reject_with_the_one_that_did() -> None:
    policies = [
        {"name": "per-client", "rate": "5/minute"},
        {"name": "everyone", "key": "global", "rate": "2/10s"},
    ]
    found = await answers({"policies": policies}, 3)
    assert found[0] == (
        200,
        [
            TEXT,
            ("ratelimit-policy", '"per-client";q=5;w=60, "everyone";q=2;w=10'),
            ("ratelimit", '"per-client";r=4;t=12, "everyone";r=1;t=5'),
            RID,
            NO_SERVER,
        ],
        b"pong",
    )
    assert found[2] == (
        429,
        [
            PROBLEM,
            ("retry-after", "5"),
            ("ratelimit-policy", '"everyone";q=2;w=10'),
            ("ratelimit", '"everyone";r=0;t=10'),
            RID,
            NO_SERVER,
        ],
        too_many("everyone", 5),
    )


async def test_an_api_key_tier_is_reported_under_its_name() -> None:
    digest = hashlib.sha256(b"k1").hexdigest()
    tiers = {"tiers": [{"name": "gold", "rate": "2/minute", "keys": [f"sha256:{digest}"]}]}
    found = await answers({"limit": "1/hour", "api_keys": tiers}, 3, ("x-api-key", "k1"))
    assert found[0][1][1:3] == [
        ("ratelimit-policy", '"gold";q=2;w=60'),
        ("ratelimit", '"gold";r=1;t=30'),
    ]
    assert found[2] == (
        429,
        [
            PROBLEM,
            ("retry-after", "30"),
            ("ratelimit-policy", '"gold";q=2;w=60'),
            ("ratelimit", '"gold";r=0;t=60'),
            RID,
            NO_SERVER,
        ],
        too_many("gold", 30),
    )
