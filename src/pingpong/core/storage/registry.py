"""Storage backends by URL scheme, built from what each backend declares."""

from __future__ import annotations

from pingpong.core.stats import Stats
from pingpong.core.storage.base import Backend, Storage, StorageOptions
from pingpong.core.storage.control import ControlStore, MemoryControl
from pingpong.core.storage.memory import MemoryStorage
from pingpong.core.storage.redis import RedisStorage
from pingpong.core.storage.redis_cluster import RedisClusterStorage
from pingpong.core.storage.redis_sentinel import RedisSentinelStorage
from pingpong.core.storage.resilient import Resilience, ResilientStorage

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


def open_storage(
    url: str, options: StorageOptions, resilience: Resilience, stats: Stats
) -> Storage:
    """The storage for a URL; shared backends come wrapped in ResilientStorage."""
    backend = backend_for(url)
    if backend is MemoryStorage:
        return MemoryStorage(max_keys=options.memory_max_keys)
    storage = backend.from_url(url, options)
    assert isinstance(storage, RedisStorage)  # every shared backend is a Redis one today
    fallback = MemoryStorage(max_keys=options.memory_max_keys)
    return ResilientStorage(storage, resilience, fallback, stats)


def control_store(storage: Storage) -> ControlStore:
    """Where the control plane keeps what every replica must agree on: the
    same place as the limiter's state (in process for memory://)."""
    if isinstance(storage, ResilientStorage):
        return storage.primary.control()
    return MemoryControl()
