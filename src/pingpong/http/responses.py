"""Rate-limit headers (IETF httpapi ratelimit-headers draft) and the 429 body."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pingpong.core.algorithms import MICROS, Limit
from pingpong.core.limiter import Decision, Reported
from pingpong.core.policy import Policy
from pingpong.http.problems import problem_body
from pingpong.http.rsgi import Header


def policy_item(name: str, limit: Limit) -> str:
    """``"name";q=<quota>;w=<seconds to regain it>``: the quota is GCRA's burst
    or the window's count, the same quota ``r`` counts down from."""
    return f'"{name}";q={limit.capacity};w={limit.window}'


def policy_header(policy: Policy) -> Header:
    return ("ratelimit-policy", policy_item(policy.name, policy.limit))


MAX_WAITS_KEPT = 4096  # answers kept per policy (a wait is at most the window)


class PolicyResponses:
    """Header items and 429 body templates per policy, built once per limiter
    (names are [A-Za-z0-9_.-]: nothing to escape)."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        # name -> (its limit, its RateLimit-Policy header, its RateLimit template)
        self._items: dict[str, tuple[Limit, Header, str]] = {
            p.name: (p.limit, policy_header(p), f'"{p.name}";r=%d;t=%d') for p in policies
        }
        self._bodies: dict[str, bytes] = {}
        # policy -> {Retry-After seconds: (its header, the 429 body)}: formatting
        # two ints costs more than the rest of a rejection's answer.
        self._rejections: dict[str, dict[int, tuple[Header, bytes]]] = {}

    def ratelimit_headers(self, reported: Sequence[Reported]) -> list[Header]:
        """``RateLimit-Policy`` and ``RateLimit`` for the policies reported;
        none at all when none was (only shadow policies, none matching, or
        ``allow`` mode deciding without the storage): never an empty header."""
        if not reported:
            return []
        if len(reported) == 1:  # the common answer: both headers from ready pieces
            first = reported[0]
            limit, outcome = first.limit, first.outcome
            default, policy_header, template = self._items[first.policy.name]
            if limit is default:
                value = template % (outcome.remaining, -(-outcome.reset_us // MICROS))
                return [policy_header, ("ratelimit", value)]
        policies, limits = [], []
        for each in reported:
            policy, limit, outcome = each.policy, each.limit, each.outcome
            default, (_, item), template = self._items[policy.name]
            policies.append(item if limit is default else policy_item(policy.name, limit))
            limits.append(template % (outcome.remaining, -(-outcome.reset_us // MICROS)))
        return [("ratelimit-policy", ", ".join(policies)), ("ratelimit", ", ".join(limits))]

    def rejection(self, decision: Decision) -> tuple[Header, bytes]:
        """``Retry-After`` (whole seconds, rounded up, at least 1) and the 429
        body of a rejected decision, each made once per policy and wait."""
        reported = decision.reported
        retry_us = reported[0].outcome.retry_us if len(reported) == 1 else decision.retry_us
        wait = max(1, -(-retry_us // MICROS))
        policy = reported[0].policy.name
        made = self._rejections.get(policy)
        if made is None:
            made = self._rejections[policy] = {}
        found = made.get(wait)
        if found is None:
            if len(made) >= MAX_WAITS_KEPT:
                made.clear()
            found = made[wait] = (("retry-after", str(wait)), self.too_many_requests(policy, wait))
        return found

    def too_many_requests(self, policy: str, wait: int) -> bytes:
        """The 429 problem document, from a template made once per policy."""
        template = self._bodies.get(policy)
        if template is None:
            template = problem_body(
                429,
                f"rate limit of policy '{policy}' exceeded; retry in %d s",
                policy=policy,
                retry_after=-1,
            ).replace(b'"retry_after":-1', b'"retry_after":%d')
            self._bodies[policy] = template
        return template % (wait, wait)
