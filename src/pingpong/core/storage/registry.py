"""Storage backends by URL scheme, built from what each backend declares."""

from __future__ import annotations

from pingpong.core.stats import Stats
from pingpong.core.storage.base import Backend, Opened, Resilience, StorageOptions
from pingpong.core.storage.memory import MemoryStorage
from pingpong.core.storage.redis.cluster import RedisClusterStorage
from pingpong.core.storage.redis.sentinel import RedisSentinelStorage
from pingpong.core.storage.redis.standalone import RedisStorage

BACKENDS: tuple[type[Backend], ...] = (
    MemoryStorage,
    RedisStorage,
    RedisClusterStorage,
    RedisSentinelStorage,
)
SCHEMES: dict[str, type[Backend]] = {
    scheme: backend for backend in BACKENDS for scheme in backend.schemes
}


def backend_for(url: str) -> type[Backend]:
    """The backend of a URL, or ValueError listing the schemes there are."""
    scheme, sep, _ = url.partition("://")
    backend = SCHEMES.get(scheme) if sep else None
    if backend is None:
        raise ValueError(
            f"unsupported storage URL; use one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    return backend


def check_url(url: str) -> None:
    """Raise ValueError saying what is wrong with a storage URL (no connection)."""
    backend_for(url).check_url(url)


def open_storage(url: str, options: StorageOptions, resilience: Resilience, stats: Stats) -> Opened:
    """The storage for a URL (a shared one behind its breaker) and the admin
    store on the same backend."""
    return backend_for(url).open(url, options, resilience, stats)
