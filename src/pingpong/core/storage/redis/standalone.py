"""Redis storage: one atomic Lua call per batch of concurrent decisions.

Requests that arrive in the same event-loop tick are decided by a single
EVALSHA (the script loops over them in arrival order), so under load Redis
sees one round trip per tick instead of one per request. The clock is Redis'
own TIME, so replicas with skewed clocks still share one timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Self

from redis.asyncio import Redis

from pingpong.core.algorithms import Outcome
from pingpong.core.stats import Stats
from pingpong.core.storage.base import (
    Check,
    Opened,
    Resilience,
    StorageError,
    StorageOptions,
)
from pingpong.core.storage.memory import MemoryStorage
from pingpong.core.storage.redis.admin import RedisAdminStore
from pingpong.core.storage.redis.client import (
    PackedConnection,
    PackedSSLConnection,
    answer_within,
    client_options,
    lua_script,
)
from pingpong.core.storage.redis.urls import check_redis_url
from pingpong.core.storage.resilient import ResilientStorage

SCRIPT = lua_script("decide")
FLEET_SCRIPT = lua_script("fleet")
FLEET_KEY = "pp:{pp-admin}:fleet"  # beside the control plane's keys
MAX_BATCH = 256
WARM_SECONDS = 5.0  # a slow storage's time to open the pool before serving

Pending = tuple[Sequence[Check], "asyncio.Future[list[Outcome]]"]


def redis_key(key: str) -> str:
    """The whole limiter key is the hash tag: one key, one Cluster slot."""
    return f"pp:{{{key}}}"


class RedisStorage:
    """One Redis server (``redis://``, or ``rediss://`` over TLS)."""

    name = "redis"
    shared = True
    acquire_now = None  # every decision waits for the network
    acquire_one_now = None
    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss")

    def __init__(self, client: Any, timeout: float, connections: int = 1) -> None:
        self.client = client
        self._timeout = timeout
        self._connections = connections
        self._script = client.register_script(SCRIPT)
        self._fleet = client.register_script(FLEET_SCRIPT)
        self._pending: list[Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def check_url(cls, url: str) -> None:
        check_redis_url(url)

    @classmethod
    def connect(cls, url: str, options: StorageOptions) -> Any:
        """This topology's client for ``url`` (it connects on first use)."""
        packed = PackedSSLConnection if url.startswith("rediss:") else PackedConnection
        return Redis.from_url(url, connection_class=packed, **client_options(options))

    @classmethod
    def from_url(cls, url: str, options: StorageOptions) -> Self:
        cls.check_url(url)
        return cls(cls.connect(url, options), options.timeout, options.connections)

    @classmethod
    def open(
        cls, url: str, options: StorageOptions, resilience: Resilience, stats: Stats
    ) -> Opened:
        """The storage behind a breaker and its failure mode, and the admin
        store on the same client."""
        storage = cls.from_url(url, options)
        fallback = MemoryStorage(max_keys=options.memory_max_keys)
        return Opened(
            ResilientStorage(storage, resilience, fallback, stats),
            RedisAdminStore(storage.client, options.timeout, stats),
        )

    def set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def configure(self, resilience: Resilience, options: StorageOptions) -> None:
        self.set_timeout(options.timeout)

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Outcome]] = loop.create_future()
        self._pending.append((checks, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        """An operator's question (inspect), not a decision: it may wait longer."""
        return await self._call("peek", [checks], max(self._timeout, 1.0))

    async def reset(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        async with answer_within(max(self._timeout, 1.0)):
            return int(await self.client.delete(*(redis_key(key) for key in keys)))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for batch in self._batches(pending):
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _batches(self, pending: list[Pending]) -> Iterator[list[Pending]]:
        """One tick's decisions in calls of at most MAX_BATCH (a Cluster splits
        them by slot too: a call's keys must share one)."""
        for start in range(0, len(pending), MAX_BATCH):
            yield pending[start : start + MAX_BATCH]

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

    async def _call(
        self, mode: str, requests: Sequence[Sequence[Check]], wait: float | None = None
    ) -> list[Outcome]:
        keys: list[str] = []
        specs: list[str] = []
        for checks in requests:
            for key, limit, shadow in checks:
                keys.append(redis_key(key))
                specs.append(f"{limit.tag},{int(shadow)};")
            specs.append("|")
        async with answer_within(wait or self._timeout):
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
        """Open the pool (``connections``, each verified by a PING) and load the
        scripts, so that the first burst of decisions (and the first heartbeat)
        pays for no connection setup or extra round trip: the server listens
        only after this. A storage that refuses fails at once; a slow one gets
        WARM_SECONDS of its own time, then the replica serves anyway."""
        async with answer_within(max(self._timeout, WARM_SECONDS)):
            await self._open_pool()
            await self.client.script_load(SCRIPT)
            await self.client.script_load(FLEET_SCRIPT)

    async def _open_pool(self) -> None:
        """PINGs at once take a connection each: the pool ends up that large."""
        await asyncio.gather(*(self.client.ping() for _ in range(self._connections)))

    async def aclose(self) -> None:
        try:
            async with answer_within(1.0):
                await self.client.aclose()
        except StorageError:
            pass  # closing a dead connection: nothing left to release
