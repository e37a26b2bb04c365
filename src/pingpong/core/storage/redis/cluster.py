"""Redis Cluster storage: one call per slot, refunds across slots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from pingpong.core.algorithms import Outcome
from pingpong.core.storage.base import Check, StorageOptions
from pingpong.core.storage.redis.client import client_options
from pingpong.core.storage.redis.standalone import Pending, RedisStorage, redis_key
from pingpong.core.storage.redis.urls import check_cluster_url, cluster_seed_url


class RedisClusterStorage(RedisStorage):
    """``redis+cluster://host:port``: any node; the client discovers the rest.

    A request's keys share a slot when they share a policy and client (the
    hash tag), but several policies may land on several slots: each slot is
    decided in its own call, and where another slot rejected, the slots that
    admitted are refunded, so a rejection still consumes no quota.
    """

    schemes: ClassVar[tuple[str, ...]] = ("redis+cluster",)

    @classmethod
    def check_url(cls, url: str) -> None:
        check_cluster_url(url)

    @classmethod
    def connect(cls, url: str, options: StorageOptions) -> Any:
        return RedisCluster.from_url(
            cluster_seed_url(url),
            socket_timeout=max(options.timeout, 0.5),
            **client_options(options),
        )

    async def acquire(self, checks: Sequence[Check]) -> list[Outcome]:
        groups: dict[int, list[int]] = {}
        for index, check in enumerate(checks):
            groups.setdefault(slot_of(check), []).append(index)
        if len(groups) == 1:  # batched with the tick's other decisions on its slot
            return await super().acquire(checks)
        outcomes: list[Outcome] = [Outcome(False, 0, 0, 0)] * len(checks)
        for indexes in groups.values():
            group_outcomes = await self._call("acquire", [[checks[i] for i in indexes]])
            for i, outcome in zip(indexes, group_outcomes, strict=True):
                outcomes[i] = outcome
        if any(not o.admitted and not c.shadow for o, c in zip(outcomes, checks, strict=True)):
            for indexes in groups.values():
                if all(outcomes[i].admitted or checks[i].shadow for i in indexes):
                    consumed = [checks[i] for i in indexes if outcomes[i].admitted]
                    await self._call("refund", [consumed])
        return outcomes

    async def _open_pool(self) -> None:
        """``connections`` to every primary: a burst's slots spread over them all."""
        await self.client.initialize()
        nodes = self.client.get_primaries()
        await asyncio.gather(
            *(
                self.client.ping(target_nodes=node)
                for node in nodes
                for _ in range(self._connections)
            )
        )

    def _batches(self, pending: list[Pending]) -> Iterator[list[Pending]]:
        """Per slot (a request here has all its keys on one), then by size."""
        slots: dict[int, list[Pending]] = {}
        for request in pending:
            slots.setdefault(slot_of(request[0][0]), []).append(request)
        for requests in slots.values():
            yield from super()._batches(requests)

    async def peek(self, checks: Sequence[Check]) -> list[Outcome]:
        timeout = max(self._timeout, 1.0)  # an operator's question, as on one server
        return [(await self._call("peek", [[check]], timeout))[0] for check in checks]


def slot_of(check: Check) -> int:
    """The Cluster slot of ``check``'s key."""
    return int(key_slot(redis_key(check.key).encode()))
