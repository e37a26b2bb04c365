"""Storage backends: where per-key limiter state lives."""

from __future__ import annotations

from pingpong.core.storage.base import Check, Storage, StorageError
from pingpong.core.storage.memory import MemoryStorage
from pingpong.core.storage.redis import RedisStorage
from pingpong.core.storage.resilient import FailureMode, ResilientStorage, StorageUnavailable

SCHEMES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")

__all__ = [
    "SCHEMES",
    "Check",
    "FailureMode",
    "MemoryStorage",
    "RedisStorage",
    "ResilientStorage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
]


def open_storage(url: str, *, timeout: float, mode: FailureMode, memory_max_keys: int) -> Storage:
    """The storage for a URL; shared backends come wrapped in ResilientStorage."""
    if url.startswith("memory://"):
        return MemoryStorage(max_keys=memory_max_keys)
    primary = RedisStorage.from_url(url, timeout)
    return ResilientStorage(primary, mode, local=MemoryStorage(max_keys=memory_max_keys))
