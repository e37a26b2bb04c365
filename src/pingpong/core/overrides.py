"""Per-key overrides: an operator's limit that replaces a policy's for one client
key until it expires. Standard library only; the storages keep them, the
limiter applies them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pingpong.core.algorithms import Limit
from pingpong.core.policy import Policy
from pingpong.core.rates import MAX_COUNT, MAX_PERIOD, Rate, parse_rate

MAX_OVERRIDES = 10_000  # overrides kept in the storage at once
MAX_EXPIRES_IN = MAX_PERIOD  # an override lasts at most a year
MAX_REASON = 500
# A client key as a policy counts it: an IPv4 address, an IPv6 prefix
# (2001:db8::/64), "*" for global, a hashed header value, "ip=<address>", ...
CLIENT_KEY = re.compile(r"^[A-Za-z0-9.:/=*_\-\[\]]{1,128}$")


class OverrideLimitReached(Exception):
    """The storage already holds MAX_OVERRIDES overrides."""


def check_key(key: str) -> str:
    """The client key, or ValueError saying what a key may contain."""
    if not isinstance(key, str) or not CLIENT_KEY.fullmatch(key):
        raise ValueError(
            "a client key is 1-128 characters of letters, digits and . : / = * _ - [ ] "
            "(an IPv4 address, an IPv6 prefix such as 2001:db8::/64, * for global, ...)"
        )
    return key


@dataclass(frozen=True, slots=True)
class Override:
    """``rate``/``burst`` replace the policy's own for ``policy``:``key``
    until ``expires_at`` (Unix seconds, wall clock: every replica agrees)."""

    policy: str
    key: str
    rate: Rate
    burst: int | None
    expires_at: float
    reason: str = ""
    created_by: str = ""
    created_at: float = 0.0

    @property
    def full_key(self) -> str:
        """The limiter's (and the storage's) key: ``<policy>:<client>``."""
        return f"{self.policy}:{self.key}"

    def limit_for(self, policy: Limit) -> Limit:
        """The override as a limit of the policy's algorithm (ValueError if its
        arithmetic would leave exact integers, as for a configured limit)."""
        return Limit(policy.algorithm, self.rate, self.burst or self.rate.count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "key": self.key,
            "rate": str(self.rate),
            "burst": self.burst,
            "expires_at": self.expires_at,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Override:
        """ValueError (or TypeError, KeyError) for anything malformed."""
        burst = data.get("burst")
        if burst is not None and not (isinstance(burst, int) and 1 <= burst <= MAX_COUNT):
            raise ValueError(f"invalid burst {burst!r}")
        return cls(
            policy=str(data["policy"]),
            key=check_key(data["key"]),
            rate=parse_rate(data["rate"]),
            burst=burst,
            expires_at=float(data["expires_at"]),
            reason=str(data.get("reason", ""))[:MAX_REASON],
            created_by=str(data.get("created_by", "")),
            created_at=float(data.get("created_at", 0.0)),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Override | None:
        """None for a stored value that does not parse (never an exception: a
        corrupt entry must not stop a replica from reading the others)."""
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError):
            return None


# What the limiter looks up per check: full key -> (limit, expires at).
OverrideLimits = dict[str, tuple[Limit, float]]


def override_limits(overrides: Iterable[Override], policies: Iterable[Policy]) -> OverrideLimits:
    """The limits of the overrides whose policy is running (the others wait for
    a reload that brings their policy back)."""
    by_name = {p.name: p for p in policies}
    limits: OverrideLimits = {}
    for override in overrides:
        policy = by_name.get(override.policy)
        if policy is None:
            continue
        try:
            limits[override.full_key] = (override.limit_for(policy.limit), override.expires_at)
        except ValueError:
            continue  # refused when it was put; a policy change may make it so
    return limits
