"""The limiter: runs every matching policy for a request against the storage.

This is the hot path, so the per-(path, method, tier) policy lists are computed
once, checks are plain tuples, and the in-memory storage is called without a
coroutine.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pingpong.core.algorithms import Limit, Outcome
from pingpong.core.denycache import DenyCache
from pingpong.core.heavy_hitters import HeavyHitters
from pingpong.core.overrides import Override, OverrideLimits, override_limits
from pingpong.core.policy import (
    API_KEY,
    CLIENT_IP,
    GLOBAL,
    Headers,
    Policy,
    Tier,
    hashed,
    key_digest,
)
from pingpong.core.stats import NoStats, Stats
from pingpong.core.storage.base import Check, Storage
from pingpong.core.storage.memory import monotonic_us

DENY_CACHE_SIZE = 100_000
NEVER = 2**62  # a deny-cache entry's bound when no override limits it


class Reported(NamedTuple):
    """One policy's verdict as the response reports it."""

    policy: Policy
    limit: Limit
    outcome: Outcome


class Decision(NamedTuple):
    """``reported``: what the response describes, i.e. every enforced policy
    when admitted, and only the rejecting ones when not."""

    admitted: bool
    reported: Sequence[Reported]

    @property
    def retry_us(self) -> int:
        """Waiting this long admits the request, if nothing else arrives."""
        return max((r.outcome.retry_us for r in self.reported), default=0)


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
        stats: Stats | None = None,
        rejections: HeavyHitters | None = None,
    ) -> None:
        self.policies = tuple(policies)
        self.tiers = tuple(tiers)
        self.storage = storage
        self._stats = stats or NoStats()
        self._acquire_now = storage.acquire_now
        self._tier_by_digest = {digest: tier for tier in tiers for digest in tier.digests}
        self._tier_policies = {
            tier.name: Policy(tier.name, tier.limit, key=API_KEY) for tier in tiers
        }
        self._api_key_header = api_key_header.lower()
        self._matching: dict[tuple[str, str, str], tuple[Policy, ...]] = {}
        self._deny = DenyCache(DENY_CACHE_SIZE) if storage.shared else None
        # Operators' per-key limits (set_overrides); empty almost always.
        self._overrides: OverrideLimits = {}
        self._rejections = rejections  # the most-throttled keys, counted

    @property
    def all_policies(self) -> tuple[Policy, ...]:
        """The configured policies and one per API-key tier."""
        return (*self.policies, *self._tier_policies.values())

    def policies_for(self, path: str, method: str, tier: str = "") -> tuple[Policy, ...]:
        found = self._matching.get((path, method, tier))
        if found is None:
            found = tuple(p for p in self.policies if p.matches(path, method))
            if tier and any(p.key == CLIENT_IP for p in found):
                rest = tuple(p for p in found if p.key != CLIENT_IP)
                found = (self._tier_policies[tier], *rest)
            if len(self._matching) > 1024:  # paths are few; never let this grow
                self._matching.clear()
            self._matching[(path, method, tier)] = found
        return found

    async def check(self, path: str, method: str, client: str, headers: Headers) -> Decision:
        tier, api_key = self._tier_of(headers) if self._tier_by_digest else ("", "")
        policies = self.policies_for(path, method, tier)
        if not policies:
            return ADMIT_ALL
        checks = []
        for p in policies:
            value = client if p.key == CLIENT_IP else _value(p, headers, client, api_key)
            checks.append(Check(p.name + ":" + value, p.limit, p.shadow))
        if self._overrides:
            checks = self._overridden(checks)
        if self._acquire_now is not None:
            return self._decide(policies, checks, self._acquire_now(checks))
        if self._deny is not None:
            denied = self._denied(policies, checks)
            if denied is not None:
                return denied
        return self._decide(policies, checks, await self.storage.acquire(checks))

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys from the deny cache (their state was reset elsewhere)."""
        if self._deny is not None:
            self._deny.forget(keys)

    def forget_all(self) -> None:
        if self._deny is not None:
            self._deny.clear()

    def set_overrides(self, overrides: Iterable[Override]) -> None:
        """The operators' per-key limits now in force (replaced whole); a key
        whose override changed is asked of the storage again."""
        old, self._overrides = self._overrides, override_limits(overrides, self.all_policies)
        self.forget(
            key
            for key in old.keys() | self._overrides.keys()
            if old.get(key) != self._overrides.get(key)
        )

    def limit_for(self, policy: Policy, key: str) -> Limit:
        """The limit ``policy`` applies to client ``key`` right now."""
        found = self._overrides.get(policy.name + ":" + key)
        return found[0] if found is not None and found[1] > time.time() else policy.limit

    def _overridden(self, checks: list[Check]) -> list[Check]:
        """Overridden keys take their override's limit until it expires (each
        replica enforces the expiry itself, to the second)."""
        overrides, now, out = self._overrides, time.time(), []
        for check in checks:
            found = overrides.get(check.key)
            if found is not None and found[1] > now:
                check = Check(check.key, found[0], check.shadow)
            out.append(check)
        return out

    def _decide(
        self, policies: Sequence[Policy], checks: Sequence[Check], outcomes: Sequence[Outcome]
    ) -> Decision:
        stats = self._stats
        admitted: list[Reported] = []
        rejected: list[Reported] = []
        for check, policy, outcome in zip(checks, policies, outcomes, strict=True):
            if policy.shadow:
                continue
            if outcome.admitted:
                admitted.append(Reported(policy, check.limit, outcome))
            else:
                rejected.append(Reported(policy, check.limit, outcome))
                if self._deny is not None:
                    self._remember_denial(check.key, outcome)
                if self._rejections is not None:
                    self._rejections.add(check.key)
        if rejected:
            for reported in rejected:
                stats.decided(reported.policy.name, "limited")
            return Decision(False, rejected)
        for policy, outcome in zip(policies, outcomes, strict=True):
            stats.decided(policy.name, "allowed" if outcome.admitted else "shadow_limited")
        return Decision(True, admitted)

    def _denied(self, policies: Sequence[Policy], checks: Sequence[Check]) -> Decision | None:
        deny = self._deny
        assert deny is not None
        now = 0
        for policy, check in zip(policies, checks, strict=True):
            if policy.shadow:
                continue
            now = now or monotonic_us()
            until = deny.get(check.key, now)
            if until is not None:
                self._stats.decided(policy.name, "limited")
                if self._rejections is not None:
                    self._rejections.add(check.key)
                outcome = Outcome(False, 0, until[1] - now, until[0] - now)
                return Decision(False, [Reported(policy, check.limit, outcome)])
        return None

    def _remember_denial(self, key: str, outcome: Outcome) -> None:
        """A rejection under an override never outlasts the override."""
        assert self._deny is not None
        now, at_most = monotonic_us(), NEVER
        override = self._overrides.get(key)
        if override is not None:
            at_most = now + int((override[1] - time.time()) * 1_000_000)
        self._deny.remember(key, now, outcome.retry_us, outcome.reset_us, at_most)

    def _tier_of(self, headers: Headers) -> tuple[str, str]:
        """The tier of the request's API key, compared by SHA-256 digest: the
        lookup time depends on the digest, never on how much of a key matches."""
        api_key = headers.get(self._api_key_header)
        if api_key is None:
            return "", ""
        digest = key_digest(api_key)
        tier = self._tier_by_digest.get(digest)
        return (tier.name, digest[:12].hex()) if tier else ("", "")


def _value(policy: Policy, headers: Headers, client: str, api_key: str) -> str:
    if policy.key == GLOBAL:
        return "*"
    if policy.key == API_KEY:
        return api_key
    value = headers.get(policy.header)
    return hashed(value) if value is not None else "ip=" + client
