"""The service: settings turned into a limiter, a resolver and counters."""

from pingpong.service.counters import Counters
from pingpong.service.runtime import Service

__all__ = ["Counters", "Service"]
