"""Per-key overrides: an operator's limit that replaces a policy's for one client
key until it expires. Standard library only; the storages keep them, the
limiter applies them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pingpong.core.algorithms import Limit
from pingpong.core.policy import NAME
from pingpong.core.rates import MAX_COUNT, MAX_PERIOD, Rate, parse_rate

MAX_OVERRIDES = 10_000  # overrides kept in the storage at once
MAX_EXPIRES_IN = MAX_PERIOD  # an override lasts at most a year
MAX_REASON = 500
# A client key as a policy counts it: an IPv4 address, an IPv6 prefix
# (2001:db8::/64), "*" for global, a hashed header value, "ip=<address>", ...
CLIENT_KEY = re.compile(r"^[A-Za-z0-9.:/=*_\-\[\]]{1,128}$")


class OverrideLimitReached(Exception):
    """The storage already holds MAX_OVERRIDES overrides."""


def check_full_key(text: str) -> str:
    """A limiter key as the storage names it, ``<policy>:<client key>``, or
    ValueError."""
    policy, colon, key = text.partition(":")
    if not colon or not NAME.fullmatch(policy) or not CLIENT_KEY.fullmatch(key):
        raise ValueError("not a <policy>:<client key>")
    return text


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
        """As strict as the admin API's own request bodies: ValueError naming
        the field for anything else (a foreign field, a number that is not
        finite, a string out of bounds)."""
        if not isinstance(data, Mapping):
            raise ValueError("an override is a JSON object")
        foreign = set(data) - FIELDS
        if foreign:
            raise ValueError(f"unknown field {sorted(foreign)[0]!r}")
        created_at = _number(data, "created_at", 0.0, MAX_TIME)
        expires_at = _number(data, "expires_at", created_at, created_at + MAX_EXPIRES_IN)
        burst = data.get("burst")
        if burst is not None and not (type(burst) is int and 1 <= burst <= MAX_COUNT):
            raise ValueError(f"burst: not an integer 1-{MAX_COUNT}")
        return cls(
            policy=_text(data, "policy", NAME),
            key=_text(data, "key", CLIENT_KEY),
            rate=parse_rate(_text(data, "rate", RATE_TEXT)),
            burst=burst,
            expires_at=expires_at,
            reason=_text(data, "reason", REASON, default=""),
            created_by=_text(data, "created_by", ACTOR, default=""),
            created_at=created_at,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Override:
        """ValueError for a stored value that is not an override we could have
        written (JSON's NaN and Infinity included)."""
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        return cls.from_dict(data)


FIELDS = frozenset(("policy", "key", "rate", "burst", "expires_at", "reason", "created_by",
                    "created_at"))  # fmt: skip
MAX_TIME = 2.0**40  # Unix seconds: far past any date an override could name
RATE_TEXT = re.compile(r"^[0-9]{1,10}/[0-9a-z]{1,10}$")  # parse_rate checks the rest
REASON = re.compile(rf"^[^\x00-\x1f\x7f]{{0,{MAX_REASON}}}$")  # no control characters
ACTOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.@-]{0,63})?$")  # an admin token's name


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _number(data: Mapping[str, Any], field: str, low: float, high: float) -> float:
    value = data.get(field, 0.0 if field == "created_at" else None)
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{field}: not a number from {low} to {high}")
    return float(value)


def _text(
    data: Mapping[str, Any], field: str, pattern: re.Pattern[str], default: str | None = None
) -> str:
    value = data.get(field, default)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{field}: missing or malformed")
    return value
