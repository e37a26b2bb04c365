"""Rate-limit headers (IETF httpapi ratelimit-headers draft) and problem bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pingpong.core.algorithms import MICROS, Limit
from pingpong.core.limiter import Reported
from pingpong.core.policy import Policy

PROBLEM_TYPE = "application/problem+json"
Header = tuple[str, str]


def seconds(us: int) -> int:
    """Whole seconds, rounded up."""
    return -(-us // MICROS)


def retry_after(retry_us: int) -> int:
    """Whole seconds, rounded up, at least 1: waiting this long is enough."""
    return max(1, seconds(retry_us))


def problem(status: int, title: str, detail: str, **extra: object) -> bytes:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def policy_item(name: str, limit: Limit) -> str:
    """``"name";q=<quota>;w=<seconds to regain it>``: the quota is GCRA's burst
    or the window's count, the same quota ``r`` counts down from."""
    return f'"{name}";q={limit.capacity};w={limit.window}'


class PolicyResponses:
    """Header items and 429 body templates per policy, built once per limiter
    (names are [A-Za-z0-9_.-]: nothing to escape)."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._items: dict[str, tuple[Limit, str, str]] = {
            p.name: (p.limit, policy_item(p.name, p.limit), f'"{p.name}";') for p in policies
        }
        self._bodies: dict[str, bytes] = {}

    def ratelimit_headers(self, reported: Sequence[Reported]) -> list[Header]:
        """``RateLimit-Policy`` and ``RateLimit`` for the policies reported."""
        policies, limits = [], []
        for policy, limit, outcome in reported:
            default, item, prefix = self._items[policy.name]
            policies.append(item if limit is default else policy_item(policy.name, limit))
            limits.append(f"{prefix}r={outcome.remaining};t={seconds(outcome.reset_us)}")
        return [("ratelimit-policy", ", ".join(policies)), ("ratelimit", ", ".join(limits))]

    def too_many_requests(self, policy: str, wait: int) -> bytes:
        """The 429 problem document, from a template made once per policy."""
        template = self._bodies.get(policy)
        if template is None:
            template = problem(
                429,
                "Too Many Requests",
                f"rate limit of policy '{policy}' exceeded; retry in %d s",
                policy=policy,
                retry_after=-1,
            ).replace(b'"retry_after":-1', b'"retry_after":%d')
            self._bodies[policy] = template
        return template % (wait, wait)
