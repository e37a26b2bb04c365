"""Redis storage: one atomic Lua call per batch of concurrent decisions.

Requests that arrive in the same event-loop tick are decided by a single
EVALSHA (the script loops over them in arrival order), so under load Redis
sees one round trip per tick instead of one per request. The clock is Redis'
own TIME, so replicas with skewed clocks still share one timeline.

Every call to Redis goes through ``answer_within``: the one place where the
driver's exceptions (redis-py's, the cluster client's, and the odd
AttributeError or RuntimeError of a connection dying mid-write) become
``StorageError``, so no driver failure ever reaches the HTTP layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any, ClassVar
from urllib.parse import urlsplit

import hiredis
from redis.asyncio import Connection, Redis, SSLConnection
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pingpong.core.algorithms import Outcome
from pingpong.core.looplag import Overloaded, storage_deadline
from pingpong.core.storage.base import Check, Storage, StorageError, StorageOptions
from pingpong.core.storage.control import ControlStore

SCRIPT = files("pingpong.core.storage").joinpath("lua/decide.lua").read_text()
FLEET_SCRIPT = files("pingpong.core.storage").joinpath("lua/fleet.lua").read_text()
FLEET_KEY = "pp:{pp-admin}:fleet"  # beside the control plane's keys
MAX_BATCH = 256
WARM_CONNECTIONS = 4

Pending = tuple[Sequence[Check], "asyncio.Future[list[Outcome]]"]


def redis_key(key: str) -> str:
    """The whole limiter key is the hash tag: one key, one Cluster slot."""
    return f"pp:{{{key}}}"


@asynccontextmanager
async def answer_within(seconds: float) -> AsyncIterator[None]:
    """Bound a Redis call in time and translate whatever it raises. The time
    this process's loop lagged meanwhile is not Redis' (``storage_deadline``)."""
    try:
        async with storage_deadline(seconds):
            yield
    except StorageError:
        raise
    except Overloaded as exc:
        raise StorageError(
            f"redis: no answer yet, this replica overloaded: {exc}", "overload"
        ) from exc
    except TimeoutError as exc:
        raise StorageError(f"redis: no answer within {seconds}s", "timeout") from exc
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


def check_redis_url(url: str) -> None:
    """Raise ValueError naming what is wrong with a redis:// or rediss:// URL."""
    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"malformed Redis URL: {exc}") from None
    path = urlsplit(url).path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"malformed Redis URL: the database must be a number, not {path!r}")


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


class RedisStorage:
    """One Redis server (``redis://``, or ``rediss://`` over TLS)."""

    name = "redis"
    shared = True
    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss")

    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._script = client.register_script(SCRIPT)
        self._fleet = client.register_script(FLEET_SCRIPT)
        self._pending: list[Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def check_url(cls, url: str) -> None:
        check_redis_url(url)

    @classmethod
    def from_url(cls, url: str, options: StorageOptions) -> Storage:
        cls.check_url(url)
        packed = PackedSSLConnection if url.startswith("rediss:") else PackedConnection
        client = Redis.from_url(url, connection_class=packed, **client_options(options))
        return cls(client, options.timeout)

    def set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def control(self) -> ControlStore:
        from pingpong.core.storage.redis_control import RedisControl

        return RedisControl(self._client, self._timeout)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Outcome]] = loop.create_future()
        self._pending.append((checks, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        return await self._call("peek", [checks])

    async def reset(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        async with answer_within(max(self._timeout, 1.0)):
            return int(await self._client.delete(*(redis_key(key) for key in keys)))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), MAX_BATCH):
            task = asyncio.create_task(self._run(pending[start : start + MAX_BATCH]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[Pending]) -> None:
        try:
            outcomes = await self._call("acquire", [checks for checks, _ in batch])
        except StorageError as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        index = 0
        for checks, future in batch:
            if not future.done():  # the request may have been cancelled meanwhile
                future.set_result(outcomes[index : index + len(checks)])
            index += len(checks)

    async def _call(self, mode: str, requests: Sequence[Sequence[Check]]) -> list[Outcome]:
        keys: list[str] = []
        specs: list[str] = []
        for checks in requests:
            for key, limit, shadow in checks:
                keys.append(redis_key(key))
                specs.append(f"{limit.tag},{int(shadow)};")
            specs.append("|")
        async with answer_within(self._timeout):
            raw = await self._script(keys=keys, args=(mode, "".join(specs)))
        return [
            Outcome(raw[i] == 1, raw[i + 1], raw[i + 2], raw[i + 3]) for i in range(0, len(raw), 4)
        ]

    async def heartbeat(self, replica: str, alive: float, leave: bool = False) -> int:
        """Count this replica in; the replicas heard from within ``alive`` s."""
        async with answer_within(max(self._timeout, 1.0)):
            args = (replica, int(alive * 1000), "leave" if leave else "")
            return int(await self._fleet(keys=[FLEET_KEY], args=args))

    async def ping(self) -> None:
        """Open a few connections and load the script, so that the first burst
        of decisions pays for no connection setup or extra round trip."""
        async with answer_within(max(self._timeout, 1.0)):
            await asyncio.gather(*(self._client.ping() for _ in range(WARM_CONNECTIONS)))
            await self._client.script_load(SCRIPT)

    async def aclose(self) -> None:
        try:
            async with answer_within(1.0):
                await self._client.aclose()
        except StorageError:
            pass  # closing a dead connection: nothing left to release
