"""RateLimit headers only where a quota was counted: never an empty one."""

from __future__ import annotations

from pingpong.config import Settings
from pingpong.http.app import App
from pingpong.service import Service
from tests.unit.rsgi import call


async def test_only_a_shadow_policy_sends_no_ratelimit_headers() -> None:
    settings = Settings.model_validate(
        {"policies": [{"name": "watch", "rate": "1/minute", "shadow": True}]}
    )
    answer = await call(App(Service(settings)), "/ping")
    assert answer.status == 200
    assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers
