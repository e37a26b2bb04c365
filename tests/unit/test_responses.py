"""The 429 answers made once per policy and wait: each wait gets its own
Retry-After and body, equal to what formatting them afresh gives."""

from __future__ import annotations

import json

from pingpong.core.algorithms import Algorithm, Limit, Outcome
from pingpong.core.limiter import Decision, Reported
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate
from pingpong.http import responses
from pingpong.http.responses import PolicyResponses

LIMIT = Limit(Algorithm.GCRA, Rate(1, 3600), 1)
POLICY = Policy("default", LIMIT)


def rejected(retry_us: int) -> Decision:
    outcome = Outcome(False, 0, retry_us, retry_us)
    return Decision(False, [Reported(POLICY, LIMIT, outcome)])


def test_each_wait_has_its_own_retry_after_and_body() -> None:
    made = PolicyResponses([POLICY])
    for retry_us, wait in [(1, 1), (999_999, 1), (1_000_001, 2), (3_599_000_000, 3599), (1, 1)]:
        (name, value), body = made.rejection(rejected(retry_us))
        assert (name, value) == ("retry-after", str(wait))
        assert json.loads(body)["retry_after"] == wait
        assert body == made.too_many_requests("default", wait)


def test_the_kept_answers_stay_bounded() -> None:
    made = PolicyResponses([POLICY])
    waits = responses.MAX_WAITS_KEPT + 10
    for wait in range(1, waits + 1):
        (_, value), body = made.rejection(rejected(wait * 1_000_000))
        assert value == str(wait) and json.loads(body)["retry_after"] == wait
    assert 0 < len(made._rejections["default"]) <= responses.MAX_WAITS_KEPT
