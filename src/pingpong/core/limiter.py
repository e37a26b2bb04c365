"""The limiter: runs every matching policy for a request against the storage.

This is the hot path, so the per-(path, method, tier) policy lists are computed
once per set of rules, the common case (one client-address policy on a local
storage) skips the general loop, the in-memory storage is called without a
coroutine, and the per-request objects are cheap to build (compiled classes, and
``new`` for the tuples: see algorithms.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import final

from pingpong.core.algorithms import Limit, Outcome, new
from pingpong.core.denycache import DenyCache
from pingpong.core.heavy_hitters import HeavyHitters
from pingpong.core.override_table import OverrideTable
from pingpong.core.overrides import Override
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
from pingpong.core.storage.resilient import Unthrottled

DENY_CACHE_SIZE = 100_000
NEVER = 2**62  # a deny-cache entry's bound when no override limits it


@final
class Reported:
    """One policy's verdict as the response reports it. A plain class, not a
    NamedTuple: compiled (mypyc), building one is a C call."""

    def __init__(self, policy: Policy, limit: Limit, outcome: Outcome) -> None:
        self.policy = policy
        self.limit = limit
        self.outcome = outcome


@final
class Decision:
    """``reported``: what the response describes, i.e. every enforced policy
    when admitted, and only the rejecting ones when not."""

    def __init__(self, admitted: bool, reported: Sequence[Reported]) -> None:
        self.admitted = admitted
        self.reported = reported

    @property
    def retry_us(self) -> int:
        """Waiting this long admits the request, if nothing else arrives."""
        reported = self.reported
        if len(reported) == 1:
            return reported[0].outcome.retry_us
        return max((r.outcome.retry_us for r in reported), default=0)


ADMIT_ALL = Decision(True, ())


class Rules:
    """What requests are decided by: the policies, the API-key tiers and the
    header that carries the key. Never changed once built (a reload builds new
    Rules); the per-(path, method, tier) policy lists are computed once each."""

    __slots__ = (
        "_matching",
        "all_policies",
        "api_key_header",
        "only",
        "policies",
        "tier_by_digest",
        "tier_policies",
        "tiers",
    )

    def __init__(
        self,
        policies: Sequence[Policy],
        tiers: Sequence[Tier] = (),
        api_key_header: str = "x-api-key",
    ) -> None:
        self.policies = tuple(policies)
        self.tiers = tuple(tiers)
        self.api_key_header = api_key_header.lower()
        self.tier_by_digest = {digest: tier for tier in tiers for digest in tier.digests}
        self.tier_policies = {
            tier.name: Policy(tier.name, tier.limit, key=API_KEY) for tier in tiers
        }
        # The configured policies and one per API-key tier.
        self.all_policies: tuple[Policy, ...] = (*self.policies, *self.tier_policies.values())
        self._matching: dict[tuple[str, str, str], tuple[Policy, ...]] = {}
        # The common case, decided without the general loop: one enforced
        # policy per client address on one exact path, no tiers.
        only = self.policies[0] if len(self.policies) == 1 and not tiers else None
        self.only = only if only is not None and _common(only) else None

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.all_policies if p.name == name), None)

    def policies_for(self, path: str, method: str, tier: str = "") -> tuple[Policy, ...]:
        found = self._matching.get((path, method, tier))
        if found is None:
            found = tuple(p for p in self.policies if p.matches(path, method))
            if tier and any(p.key == CLIENT_IP for p in found):
                rest = tuple(p for p in found if p.key != CLIENT_IP)
                found = (self.tier_policies[tier], *rest)
            if len(self._matching) > 1024:  # paths are few; never let this grow
                self._matching.clear()
            self._matching[(path, method, tier)] = found
        return found

    def tier_of(self, headers: Headers) -> tuple[str, str]:
        """The tier of the request's API key, compared by SHA-256 digest: the
        lookup time depends on the digest, never on how much of a key matches."""
        api_key = headers.get(self.api_key_header)
        if api_key is None:
            return "", ""
        digest = key_digest(api_key)
        tier = self.tier_by_digest.get(digest)
        return (tier.name, digest[:12].hex()) if tier else ("", "")


class Limiter:
    """Decides requests against its ``rules``; every matching policy must admit.

    One limiter serves the whole life of the process: a reload swaps its
    rules in one assignment (``swap``), so a request sees the old rules or the
    new, never a mix. It owns the operators' per-key overrides, and counts the
    keys it rejects (``rejections``).

    With a shared storage, a local deny cache remembers "rejected until t" per
    key: a client flooding far over its limit is answered without a round trip.
    This never admits anyone (it only rejects), and t is the storage's own
    retry time, before which no replica could admit that key anyway.
    """

    def __init__(self, rules: Rules, storage: Storage, stats: Stats | None = None) -> None:
        self.rules = rules
        self.storage = storage
        self.rejections = HeavyHitters()  # the most-throttled keys, counted
        self._stats = stats or NoStats()
        self._acquire_now = storage.acquire_now
        self._acquire_one_now = storage.acquire_one_now
        self._deny = DenyCache(DENY_CACHE_SIZE) if storage.shared else None
        # Operators' per-key limits, and what the limiter looks up per check
        # (empty almost always).
        self._overrides = OverrideTable()
        self._overrides.bind(rules.all_policies)
        self._override_limits = self._overrides.limits

    def check_now(self, path: str, method: str, client: str) -> Decision | None:
        """The decision without a coroutine, in the common case (``Rules.only``,
        no overrides, a local storage); None otherwise: then ``check`` decides."""
        only = self.rules.only
        if only is None or self._acquire_one_now is None or self._override_limits:
            return None
        if path != only.path or method not in only.methods:
            return ADMIT_ALL
        key = only.name + ":" + client
        outcome = self._acquire_one_now(key, only.limit)
        reported = (Reported(only, only.limit, outcome),)
        if outcome.admitted:
            self._stats.decided(only.name, "allowed")
            return Decision(True, reported)
        self.rejections.add(key)
        self._stats.decided(only.name, "limited")
        return Decision(False, reported)

    async def check(self, path: str, method: str, client: str, headers: Headers) -> Decision:
        decided = self.check_now(path, method, client)
        if decided is not None:
            return decided
        rules = self.rules
        tier, api_key = rules.tier_of(headers) if rules.tier_by_digest else ("", "")
        policies = rules.policies_for(path, method, tier)
        if not policies:
            return ADMIT_ALL
        checks = []
        for p in policies:
            value = client if p.key == CLIENT_IP else _value(p, headers, client, api_key)
            checks.append(new(Check, (p.name + ":" + value, p.limit, p.shadow)))
        if self._override_limits:
            checks = self._overridden(checks)
        if self._acquire_now is not None:
            return self._decide(policies, checks, self._acquire_now(checks))
        if self._deny is not None:
            denied = self._denied(policies, checks)
            if denied is not None:
                return denied
        try:
            outcomes = await self.storage.acquire(checks)
        except Unthrottled:
            return ADMIT_ALL
        return self._decide(policies, checks, outcomes)

    def swap(self, rules: Rules) -> None:
        """Decide by ``rules`` from now on. The deny cache is dropped (the new
        limits may free a throttled client at once); the overrides stay, as
        limits of the new policies."""
        self.rules = rules
        self._overrides.bind(rules.all_policies)
        self.forget_all()

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys from the deny cache (their state was reset elsewhere)."""
        if self._deny is not None:
            self._deny.forget(keys)

    def forget_all(self) -> None:
        if self._deny is not None:
            self._deny.clear()

    @property
    def overrides(self) -> Mapping[str, Override]:
        """The operators' overrides by full key (expired ones included until
        they are replaced or removed)."""
        return self._overrides

    def set_overrides(self, overrides: Iterable[Override]) -> None:
        """The operators' per-key limits now in force (replaced whole); a key
        whose override changed is asked of the storage again."""
        self.forget(self._overrides.replace(overrides))

    def put_override(self, override: Override) -> None:
        """Add or replace one override (the others are left as they are)."""
        self._overrides.put(override)
        self.forget([override.full_key])

    def drop_override(self, full_key: str) -> None:
        self._overrides.drop(full_key)
        self.forget([full_key])

    def drop_expired(self, now: float) -> None:
        """Forget the overrides that have expired (they no longer apply anyway)."""
        for full_key in self._overrides.expired(now):
            self.drop_override(full_key)

    def limit_for(self, policy: Policy, key: str) -> Limit:
        """The limit ``policy`` applies to client ``key`` right now."""
        return self._overrides.limit(policy.name + ":" + key, time.time()) or policy.limit

    def _overridden(self, checks: list[Check]) -> list[Check]:
        """Overridden keys take their override's limit until it expires (each
        replica enforces the expiry itself, to the second)."""
        overrides, now, out = self._overrides, time.time(), []
        for check in checks:
            limit = overrides.limit(check.key, now)
            if limit is not None:
                check = Check(check.key, limit, check.shadow)
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
                self.rejections.add(check.key)
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
                self.rejections.add(check.key)
                outcome = new(Outcome, (False, 0, until[1] - now, until[0] - now))
                return Decision(False, [Reported(policy, check.limit, outcome)])
        return None

    def _remember_denial(self, key: str, outcome: Outcome) -> None:
        """A rejection under an override never outlasts the override."""
        assert self._deny is not None
        now, at_most = monotonic_us(), NEVER
        override = self._override_limits.get(key)
        if override is not None:
            at_most = now + int((override[1] - time.time()) * 1_000_000)
        self._deny.remember(key, now, outcome.retry_us, outcome.reset_us, at_most)


def _common(policy: Policy) -> bool:
    """Keyed by the client address, enforced, on one exact path."""
    return policy.key == CLIENT_IP and not policy.shadow and not policy.path.endswith("*")


def _value(policy: Policy, headers: Headers, client: str, api_key: str) -> str:
    if policy.key == GLOBAL:
        return "*"
    if policy.key == API_KEY:
        return api_key
    value = headers.get(policy.header)
    return hashed(value) if value is not None else "ip=" + client
