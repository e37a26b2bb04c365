"""What every Redis topology's client shares: its options, hiredis packing,
the Lua scripts, and ``answer_within`` (URLs are checked in ``urls``).

``answer_within`` is the one place where the driver's exceptions (redis-py's,
the cluster client's, and the odd AttributeError or RuntimeError of a
connection dying mid-write) become ``StorageError``, so no driver failure
ever reaches the HTTP layer. Every call to Redis goes through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import hiredis
from redis.asyncio import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pingpong.core.looplag import Overloaded, storage_deadline
from pingpong.core.storage.base import OVERLOAD, TIMEOUT, StorageError, StorageOptions


def lua_script(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return files("pingpong.core.storage.redis").joinpath(f"lua/{name}.lua").read_text()


@asynccontextmanager
async def answer_within(seconds: float) -> AsyncIterator[None]:
    """Bound a Redis call in time and translate whatever it raises. The time
    this process was busy meanwhile is not Redis' (``storage_deadline``)."""
    try:
        async with storage_deadline(seconds):
            yield
    except StorageError:
        raise
    except Overloaded as exc:
        raise StorageError(
            f"redis: no answer yet, this replica overloaded: {exc}", OVERLOAD
        ) from exc
    except TimeoutError as exc:
        raise StorageError(f"redis: no answer within {seconds}s", TIMEOUT) from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StorageError(f"redis connection: {exc}", "connection") from exc
    except Exception as exc:  # every driver failure is a storage failure
        raise StorageError(f"redis: {type(exc).__name__}: {exc}", "other") from exc


def client_options(options: StorageOptions) -> dict[str, Any]:
    """What every topology's client gets: a bounded connect, and one retry on
    a fresh connection (a pooled connection may be stale after a Redis restart);
    ``answer_within`` bounds the whole call, retry included."""
    return {
        "socket_connect_timeout": max(options.timeout, 0.5),
        "retry": Retry(NoBackoff(), 1),
    }


class _HiredisPacking:
    """redis-py's asyncio connections pack commands in Python (about 2.5 µs
    an argument on the benchmark machine); hiredis packs the same bytes in C,
    ten times faster. Multi-word commands ("SCRIPT LOAD") are split as
    redis-py does."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class PackedConnection(_HiredisPacking, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass
