"""Rate strings such as ``100/minute`` or ``5/10s``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(?:(second|minute|hour|day)|(\d+)\s*s)\s*$")
RATE_FORMAT = "N/second|minute|hour|day or N/<seconds>s, e.g. 100/minute or 5/10s"
# Bounds shared with the Lua script, whose numbers are doubles (exact to 2**53):
# with these, every sum and product the algorithms form stays exact.
MAX_COUNT = 10**9
MAX_PERIOD = 366 * 86400  # a year; longer windows are configuration mistakes


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period`` seconds."""

    count: int
    period: int

    def __str__(self) -> str:
        for unit, seconds in _UNITS.items():
            if seconds == self.period:
                return f"{self.count}/{unit}"
        return f"{self.count}/{self.period}s"


def parse_rate(text: str) -> Rate:
    """Parse a rate string; raise ValueError naming the accepted format."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid rate {text!r}: expected {RATE_FORMAT}")
    count = int(match.group(1))
    period = _UNITS[match.group(2)] if match.group(2) else int(match.group(3))
    if count < 1:
        raise ValueError(f"invalid rate {text!r}: the count must be at least 1")
    if period < 1:
        raise ValueError(f"invalid rate {text!r}: the period must be at least 1 second")
    if count > MAX_COUNT:
        raise ValueError(f"invalid rate {text!r}: the count must be at most {MAX_COUNT}")
    if period > MAX_PERIOD:
        raise ValueError(f"invalid rate {text!r}: the period must be at most {MAX_PERIOD} s")
    return Rate(count, period)
