"""Rate-limit headers (IETF httpapi ratelimit-headers draft) and problem bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pingpong.core.algorithms import MICROS, Outcome
from pingpong.core.policy import Policy

PROBLEM_TYPE = "application/problem+json"
Header = tuple[str, str]

# Per policy object: its RateLimit-Policy item and its RateLimit item prefix.
_items: dict[int, tuple[Policy, str, str]] = {}
# Per policy name (names are [A-Za-z0-9_.-], nothing to escape): the 429 body.
_too_many: dict[str, bytes] = {}


def _seconds(us: int) -> int:
    return -(-us // MICROS)


def _policy_items(policy: Policy) -> tuple[str, str]:
    """``"name";q=<quota>;w=<window seconds>`` and ``"name";``, built once."""
    cached = _items.get(id(policy))
    if cached is None or cached[0] is not policy:
        if len(_items) > 4096:  # reloads create new policies; drop the old ones
            _items.clear()
        rate = policy.limit.rate
        item = f'"{policy.name}";q={rate.count};w={rate.period}'
        cached = (policy, item, f'"{policy.name}";')
        _items[id(policy)] = cached
    return cached[1], cached[2]


def ratelimit_headers(results: Sequence[tuple[Policy, Outcome]]) -> list[Header]:
    """``RateLimit-Policy`` and ``RateLimit`` for the policies that decided."""
    policies, limits = [], []
    for policy, outcome in results:
        item, prefix = _policy_items(policy)
        policies.append(item)
        limits.append(f"{prefix}r={outcome.remaining};t={_seconds(outcome.reset_us)}")
    return [("ratelimit-policy", ", ".join(policies)), ("ratelimit", ", ".join(limits))]


def retry_after(retry_us: int) -> int:
    """Whole seconds, rounded up, at least 1: waiting this long is enough."""
    return max(1, _seconds(retry_us))


def problem(status: int, title: str, detail: str, **extra: object) -> bytes:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def too_many_requests(policy: str, wait: int) -> bytes:
    """The 429 problem document, from a template made once per policy."""
    template = _too_many.get(policy)
    if template is None:
        if len(_too_many) > 4096:
            _too_many.clear()
        template = problem(
            429,
            "Too Many Requests",
            f"rate limit of policy '{policy}' exceeded; retry in %d s",
            policy=policy,
            retry_after=-1,
        ).replace(b'"retry_after":-1', b'"retry_after":%d')
        _too_many[policy] = template
    return template % (wait, wait)
