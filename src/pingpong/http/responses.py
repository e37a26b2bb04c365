"""Rate-limit headers (IETF httpapi ratelimit-headers draft) and problem bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pingpong.core.algorithms import Outcome
from pingpong.core.policy import Policy

PROBLEM_TYPE = "application/problem+json"


def _seconds(us: int) -> int:
    return -(-us // 1_000_000)


def policy_item(policy: Policy) -> str:
    """``"name";q=<quota>;w=<window seconds>``."""
    rate = policy.limit.rate
    return f'"{policy.name}";q={rate.count};w={rate.period}'


def ratelimit_headers(results: Sequence[tuple[Policy, Outcome]]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` and ``RateLimit`` for the policies that decided."""
    policies = ", ".join(policy_item(p) for p, _ in results)
    limits = ", ".join(f'"{p.name}";r={o.remaining};t={_seconds(o.reset_us)}' for p, o in results)
    return [(b"ratelimit-policy", policies.encode()), (b"ratelimit", limits.encode())]


def retry_after(retry_us: int) -> int:
    """Whole seconds, rounded up, at least 1: waiting this long is enough."""
    return max(1, _seconds(retry_us))


def problem(status: int, title: str, detail: str, **extra: object) -> bytes:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body, separators=(",", ":")).encode()
