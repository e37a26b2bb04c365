"""The overrides one replica enforces, in a form the garbage collector does not walk.

A full collection visits every object it tracks. Kept as dataclasses, each
override is four tracked objects (the override, its rate, its limit, the
limiter's entry): with 10,000 stored, a full collection took 20 ms longer on
every replica, every few tens of seconds, whoever was busy. Here each
override is a tuple of strings and numbers, which CPython stops tracking at
the first collection it survives, and the limits a check needs are built on
demand into a small bounded cache: however many overrides are stored, the
collector tracks the same few objects (counted in
tests/unit/test_override_table.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.overrides import Override
from pingpong.core.policy import Policy
from pingpong.core.rates import Rate

# A limit's own fields as atomics: algorithm, rate count, rate period, burst.
Shape = tuple[str, int, int, int]
# An override's fields as atomics (its rate as count and period).
Packed = tuple[str, str, int, int, int | None, float, str, str, float]
EXPIRES_AT: Final = 5  # the index of expires_at in Packed
BUILT_LIMITS = 256  # limits kept built at once (distinct shapes in use are few)


def pack(override: Override) -> Packed:
    o = override
    return (o.policy, o.key, o.rate.count, o.rate.period, o.burst, o.expires_at, o.reason,
            o.created_by, o.created_at)  # fmt: skip


def unpack(packed: Packed) -> Override:
    policy, key, count, period, burst, expires_at, reason, created_by, created_at = packed
    return Override(policy, key, Rate(count, period), burst, expires_at, reason, created_by,
                    created_at)  # fmt: skip


class OverrideTable(Mapping[str, Override]):
    """Full key -> override (unpacked on access: an operator's read, not a
    check's). ``limits`` is what a check looks up: full key -> (shape,
    expires at), only for overrides whose policy is running; it is changed
    in place, never replaced, so a reference to it stays current."""

    def __init__(self) -> None:
        self.limits: dict[str, tuple[Shape, float]] = {}
        self._packed: dict[str, Packed] = {}
        self._built: dict[Shape, Limit] = {}
        self._policies: dict[str, Policy] = {}

    def __getitem__(self, full_key: str) -> Override:
        return unpack(self._packed[full_key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def limit(self, full_key: str, now: float) -> Limit | None:
        """The override's limit for ``full_key`` while it lasts, else None."""
        found = self.limits.get(full_key)
        if found is None or found[1] <= now:
            return None
        return self._built.get(found[0]) or self._build(found[0])

    def bind(self, policies: Iterable[Policy]) -> None:
        """Limits of these policies from now on (a reload): an override whose
        policy left waits for a reload that brings it back."""
        self._policies = {p.name: p for p in policies}
        self._built.clear()
        self.limits.clear()
        for full_key, packed in self._packed.items():
            self._bind(full_key, packed)

    def put(self, override: Override) -> None:
        packed = self._packed[override.full_key] = pack(override)
        self.limits.pop(override.full_key, None)
        self._bind(override.full_key, packed)

    def drop(self, full_key: str) -> None:
        self._packed.pop(full_key, None)
        self.limits.pop(full_key, None)

    def replace(self, overrides: Iterable[Override]) -> list[str]:
        """Hold exactly ``overrides``; the keys whose limit changed."""
        old = dict(self.limits)
        self._packed = {o.full_key: pack(o) for o in overrides}
        self.limits.clear()
        for full_key, packed in self._packed.items():
            self._bind(full_key, packed)
        new = self.limits
        return [key for key in old.keys() | new.keys() if old.get(key) != new.get(key)]

    def expired(self, now: float) -> list[str]:
        return [key for key, packed in self._packed.items() if packed[EXPIRES_AT] <= now]

    def _bind(self, full_key: str, packed: Packed) -> None:
        policy = self._policies.get(packed[0])
        if policy is None:
            return
        count, period, burst = packed[2], packed[3], packed[4]
        shape = (policy.limit.algorithm.value, count, period, burst or count)
        try:
            if shape not in self._built:
                self._build(shape)  # its arithmetic must stay in exact integers
        except ValueError:
            return  # refused when it was put; a policy change may make it so
        self.limits[full_key] = (shape, packed[EXPIRES_AT])

    def _build(self, shape: Shape) -> Limit:
        if len(self._built) >= BUILT_LIMITS:
            self._built.clear()  # a cache: anything dropped is rebuilt on its next check
        algorithm, count, period, burst = shape
        built = self._built[shape] = Limit(Algorithm(algorithm), Rate(count, period), burst)
        return built
