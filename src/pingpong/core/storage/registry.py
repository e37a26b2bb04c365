"""Storage backends by URL scheme.

Each scheme has a URL check that needs no driver and the backend that opens
it, imported only when a URL of that scheme is opened: checking a config
(``check-config``, every reload) never loads redis-py or hiredis, and a
memory:// server never does.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import NamedTuple, cast

from pingpong.core.stats import Stats
from pingpong.core.storage.base import Backend, Opened, Resilience, StorageOptions
from pingpong.core.storage.memory import check_memory_url
from pingpong.core.storage.redis.urls import (
    check_cluster_url,
    check_redis_url,
    check_sentinel_url,
)


class Scheme(NamedTuple):
    check: Callable[[str], None]
    backend: str  # "module:class"


_REDIS = "pingpong.core.storage.redis"
SCHEMES: dict[str, Scheme] = {
    "memory": Scheme(check_memory_url, "pingpong.core.storage.memory:MemoryStorage"),
    "redis": Scheme(check_redis_url, f"{_REDIS}.standalone:RedisStorage"),
    "rediss": Scheme(check_redis_url, f"{_REDIS}.standalone:RedisStorage"),
    "redis+cluster": Scheme(check_cluster_url, f"{_REDIS}.cluster:RedisClusterStorage"),
    "redis+sentinel": Scheme(check_sentinel_url, f"{_REDIS}.sentinel:RedisSentinelStorage"),
}


def scheme_of(url: str) -> Scheme:
    """The scheme of a URL, or ValueError listing the schemes there are."""
    name, sep, _ = url.partition("://")
    scheme = SCHEMES.get(name) if sep else None
    if scheme is None:
        raise ValueError(
            f"unsupported storage URL; use one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    return scheme


def backend_for(url: str) -> type[Backend]:
    """The backend class of a URL (importing its module, and driver, now)."""
    module, _, name = scheme_of(url).backend.partition(":")
    return cast(type[Backend], getattr(import_module(module), name))


def check_url(url: str) -> None:
    """Raise ValueError saying what is wrong with a storage URL (no connection)."""
    scheme_of(url).check(url)


def open_storage(url: str, options: StorageOptions, resilience: Resilience, stats: Stats) -> Opened:
    """The storage for a URL (a shared one behind its breaker) and the admin
    store on the same backend."""
    return backend_for(url).open(url, options, resilience, stats)
