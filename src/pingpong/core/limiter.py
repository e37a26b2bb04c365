"""The limiter: runs every matching policy for a request against the storage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pingpong import metrics
from pingpong.core.algorithms import Outcome
from pingpong.core.policy import (
    API_KEY,
    CLIENT_IP,
    GLOBAL,
    Policy,
    Tier,
    hashed,
    header_value,
    key_digest,
)
from pingpong.core.storage import Check, Storage
from pingpong.core.storage.memory import monotonic_us

Headers = Sequence[tuple[bytes, bytes]]
DENY_CACHE_SIZE = 100_000


class Decision(NamedTuple):
    """``results`` holds every enforced policy when admitted, and only the
    rejecting ones when not."""

    admitted: bool
    results: Sequence[tuple[Policy, Outcome]]

    @property
    def retry_us(self) -> int:
        """Waiting this long admits the request, if nothing else arrives."""
        return max((outcome.retry_us for _, outcome in self.results), default=0)


ADMIT_ALL = Decision(True, ())


class Limiter:
    """Decides requests against ``policies``; every matching policy must admit.

    With a shared storage, a local deny cache remembers "rejected until t" per
    key: a client flooding far over its limit is answered without a round trip.
    This never admits anyone (it only rejects), and t is the storage's own
    retry time, before which no replica could admit that key anyway.
    """

    def __init__(
        self,
        policies: Sequence[Policy],
        storage: Storage,
        tiers: Sequence[Tier] = (),
        api_key_header: str = "x-api-key",
    ) -> None:
        self.policies = tuple(policies)
        self.tiers = tuple(tiers)
        self._storage = storage
        self._tier_by_digest = {digest: tier for tier in tiers for digest in tier.digests}
        self._tier_policies = {
            tier.name: Policy(tier.name, tier.limit, key=API_KEY) for tier in tiers
        }
        self._api_key_header = api_key_header.lower().encode("latin-1")
        self._matching: dict[tuple[str, str, str], tuple[Policy, ...]] = {}
        self._deny: dict[str, int] | None = {} if storage.shared else None
        self._counters = {
            p.name: {
                d: metrics.ratelimit_decisions.labels(p.name, d)
                for d in ("allowed", "limited", "shadow_limited")
            }
            for p in (*self.policies, *self._tier_policies.values())
        }

    def policies_for(self, path: str, method: str, tier: str = "") -> tuple[Policy, ...]:
        cache_key = (path, method, tier)
        found = self._matching.get(cache_key)
        if found is None:
            found = tuple(p for p in self.policies if p.matches(path, method))
            if tier and any(p.key == CLIENT_IP for p in found):
                rest = tuple(p for p in found if p.key != CLIENT_IP)
                found = (self._tier_policies[tier], *rest)
            if len(self._matching) > 1024:  # paths are few; never let this grow
                self._matching.clear()
            self._matching[cache_key] = found
        return found

    async def check(self, path: str, method: str, client: str, headers: Headers) -> Decision:
        tier, api_key = self._tier_of(headers) if self._tier_by_digest else ("", "")
        policies = self.policies_for(path, method, tier)
        if not policies:
            return ADMIT_ALL
        checks = [
            Check(p.name + ":" + self._value(p, client, headers, api_key), p.limit, p.shadow)
            for p in policies
        ]
        if self._deny is not None:
            denied = self._denied(policies, checks)
            if denied is not None:
                return denied
        outcomes = await self._storage.acquire(checks)
        return self._decide(policies, checks, outcomes)

    def _decide(
        self, policies: Sequence[Policy], checks: Sequence[Check], outcomes: Sequence[Outcome]
    ) -> Decision:
        rejected = [
            (p, o) for p, o in zip(policies, outcomes, strict=True) if not (o.admitted or p.shadow)
        ]
        if rejected:
            if self._deny is not None:
                now = monotonic_us()
                for policy, outcome in rejected:
                    self._remember_denial(policies, checks, policy, now + outcome.retry_us)
            for policy, _ in rejected:
                self._counters[policy.name]["limited"].inc()
            return Decision(False, rejected)
        results = []
        for policy, outcome in zip(policies, outcomes, strict=True):
            if policy.shadow:
                verdict = "allowed" if outcome.admitted else "shadow_limited"
                self._counters[policy.name][verdict].inc()
            else:
                self._counters[policy.name]["allowed"].inc()
                results.append((policy, outcome))
        return Decision(True, results)

    def _denied(self, policies: Sequence[Policy], checks: Sequence[Check]) -> Decision | None:
        deny = self._deny
        assert deny is not None
        now = 0
        for policy, check in zip(policies, checks, strict=True):
            until = deny.get(check.key)
            if until is None or policy.shadow:
                continue
            now = now or monotonic_us()
            if until > now:
                self._counters[policy.name]["limited"].inc()
                wait = until - now
                return Decision(False, [(policy, Outcome(False, 0, wait, wait))])
            del deny[check.key]
        return None

    def _remember_denial(
        self, policies: Sequence[Policy], checks: Sequence[Check], policy: Policy, until: int
    ) -> None:
        deny = self._deny
        assert deny is not None
        key = checks[policies.index(policy)].key
        if len(deny) >= DENY_CACHE_SIZE:
            del deny[next(iter(deny))]
        deny[key] = until

    def _tier_of(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
        """The tier of the request's API key, compared by SHA-256 digest: the
        lookup time depends on the digest, never on how much of a key matches."""
        api_key = header_value(headers, self._api_key_header)
        if api_key is None:
            return "", ""
        digest = key_digest(api_key)
        tier = self._tier_by_digest.get(digest)
        return (tier.name, digest[:12].hex()) if tier else ("", "")

    @staticmethod
    def _value(policy: Policy, client: str, headers: Headers, api_key: str) -> str:
        if policy.key == CLIENT_IP:
            return client
        if policy.key == GLOBAL:
            return "*"
        if policy.key == API_KEY:
            return api_key
        value = header_value(headers, policy.header)
        return hashed(value) if value is not None else "ip=" + client
