"""Storage backends: where per-key limiter state lives.

Import the backends from their modules (``storage.redis`` loads redis-py);
``storage.registry`` opens any of them by URL.
"""

from pingpong.core.storage.base import Check, Storage, StorageError, StorageOptions

__all__ = ["Check", "Storage", "StorageError", "StorageOptions"]
