"""Redis storage: one atomic Lua call per batch of concurrent decisions.

Requests that arrive in the same event-loop tick are decided by a single
EVALSHA (the script loops over them in arrival order), so under load Redis
sees one round trip per tick instead of one per request. The clock is Redis'
own TIME, so replicas with skewed clocks still share one timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.resources import files
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.asyncio import Connection, Redis, SSLConnection
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from pingpong.core.algorithms import Algorithm, Limit, Outcome
from pingpong.core.storage.base import Check, StorageError

SCRIPT = files("pingpong.core.storage").joinpath("lua/decide.lua").read_text()
_CODES = {Algorithm.GCRA: 1, Algorithm.SLIDING_WINDOW: 2, Algorithm.FIXED_WINDOW: 3}
MAX_BATCH = 256
WARM_CONNECTIONS = 4

Pending = tuple[Sequence[Check], "asyncio.Future[list[Outcome]]"]


def redis_key(key: str) -> str:
    """The whole limiter key is the hash tag: one key, one Cluster slot."""
    return f"pp:{{{key}}}"


class RedisStorageError(StorageError):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"redis {kind}: {detail}")
        self.kind = kind  # timeout | connection | other


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


def connect(url: str, timeout: float) -> tuple[Any, bool]:
    """A client for a storage URL, and whether it is a Redis Cluster."""
    options: dict[str, Any] = {
        "socket_connect_timeout": max(timeout, 0.5),
        "retry": Retry(NoBackoff(), 0),
    }
    scheme, _, rest = url.partition("://")
    if scheme in ("redis", "rediss"):
        packed = PackedSSLConnection if scheme == "rediss" else PackedConnection
        return Redis.from_url(url, connection_class=packed, **options), False
    if scheme == "redis+cluster":
        return RedisCluster.from_url(f"redis://{rest}", socket_connect_timeout=1.0), True
    if scheme == "redis+sentinel":
        parts = urlsplit(url)
        hosts = [_host_port(item) for item in parts.netloc.rpartition("@")[2].split(",")]
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("redis+sentinel:// needs the service name: host:port/<service>")
        auth = {"password": unquote(parts.password)} if parts.password else {}
        db = int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(hosts, sentinel_kwargs={"socket_connect_timeout": 0.5}, **auth)  # type: ignore[no-untyped-call]
        return sentinel.master_for(path[0], db=db, **options), False
    raise ValueError(f"unsupported storage scheme {scheme!r}")


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    return host.strip("[]") or item, int(port) if port else 26379


class RedisStorage:
    name = "redis"
    shared = True

    def __init__(self, client: Any, *, cluster: bool, timeout: float) -> None:
        self._client = client
        self._cluster = cluster
        self._timeout = timeout
        self._script = client.register_script(SCRIPT)
        self._pending: list[Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._specs: dict[tuple[int, bool], tuple[Limit, str]] = {}

    @classmethod
    def from_url(cls, url: str, timeout: float) -> RedisStorage:
        client, cluster = connect(url, timeout)
        return cls(client, cluster=cluster, timeout=timeout)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        if self._cluster:
            return await self._acquire_by_slot(checks)
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._pending.append((checks, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

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
                specs.append(self._spec(limit, shadow))
            specs.append("|")
        args = (mode, "".join(specs))
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._script(keys=keys, args=args)
        except TimeoutError as exc:
            raise RedisStorageError("timeout", f"no answer within {self._timeout}s") from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise RedisStorageError("connection", str(exc)) from exc
        except RedisError as exc:
            raise RedisStorageError("other", str(exc)) from exc
        return [
            Outcome(raw[i] == 1, raw[i + 1], raw[i + 2], raw[i + 3]) for i in range(0, len(raw), 4)
        ]

    def _spec(self, limit: Limit, shadow: bool) -> str:
        """``algorithm,interval,capacity,shadow;``, built once per limit."""
        cached = self._specs.get((id(limit), shadow))
        if cached is None or cached[0] is not limit:
            if len(self._specs) > 4096:  # reloads create new limits; drop the old ones
                self._specs.clear()
            spec = f"{_CODES[limit.algorithm]},{limit.interval_us},{limit.capacity},{int(shadow)};"
            cached = (limit, spec)
            self._specs[(id(limit), shadow)] = cached
        return cached[1]

    async def _acquire_by_slot(self, checks: Sequence[Check]) -> list[Outcome]:
        """Redis Cluster: one call per slot, then refund the slots that admitted
        if another slot rejected, so a rejection still consumes no quota."""
        groups: dict[int, list[int]] = {}
        for index, check in enumerate(checks):
            groups.setdefault(key_slot(redis_key(check.key).encode()), []).append(index)
        outcomes: list[Outcome] = [Outcome(False, 0, 0, 0)] * len(checks)
        for indexes in groups.values():
            group_outcomes = await self._call("acquire", [[checks[i] for i in indexes]])
            for i, outcome in zip(indexes, group_outcomes, strict=True):
                outcomes[i] = outcome
        if len(groups) > 1 and any(
            not o.admitted and not c.shadow for o, c in zip(outcomes, checks, strict=True)
        ):
            for indexes in groups.values():
                if all(outcomes[i].admitted or checks[i].shadow for i in indexes):
                    consumed = [checks[i] for i in indexes if outcomes[i].admitted]
                    await self._call("refund", [consumed])
        return outcomes

    async def ping(self) -> None:
        """Open a few connections and load the script, so that the first burst
        of decisions pays for no connection setup or extra round trip."""
        try:
            async with asyncio.timeout(max(self._timeout, 1.0)):
                await asyncio.gather(*(self._client.ping() for _ in range(WARM_CONNECTIONS)))
                await self._client.script_load(SCRIPT)
        except (TimeoutError, RedisError, OSError) as exc:
            raise RedisStorageError("connection", str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
