"""A replica follows changes incrementally: it re-reads only the overrides
the change log names, never every override (which stalled every replica once
there were thousands)."""

from __future__ import annotations

from collections.abc import Sequence

from pingpong.config import Settings
from pingpong.core.overrides import Override
from pingpong.core.rates import Rate
from pingpong.core.storage.admin import MemoryAdminStore
from pingpong.service import Service
from pingpong.service.control import Actor, ControlPlane
from pingpong.service.override_request import OverrideRequest

ACTOR = Actor("ops", "req-1")
NINE_A_MINUTE = OverrideRequest(rate=Rate(9, 60), expires_in=60)


class CountingStore(MemoryAdminStore):
    """The memory store, counting what the replicas read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.full_reads = 0
        self.keys_read: list[str] = []

    async def overrides(self, now: float) -> list[Override]:
        self.full_reads += 1
        return await super().overrides(now)

    async def overrides_for(self, full_keys: Sequence[str]) -> dict[str, Override | None]:
        self.keys_read += full_keys
        return await super().overrides_for(full_keys)


def replica(store: CountingStore) -> ControlPlane:
    service = Service(Settings(limit="3/minute"))
    return ControlPlane(service.limiter, service.storage, store, lambda: service.resolver)


async def test_a_replica_re_reads_only_the_keys_that_changed() -> None:
    store = CountingStore()
    a, b = replica(store), replica(store)
    await b.sync()  # the first sync reads everything once
    assert store.full_reads == 1
    for i in range(50):
        await a.put_override("default", f"10.0.0.{i}", NINE_A_MINUTE, ACTOR)
    await a.reset("default", "10.0.0.7", ACTOR)
    await b.sync()
    assert store.full_reads == 1  # never everything again
    assert sorted(store.keys_read) == sorted(
        [f"default:10.0.0.{i}" for i in range(50)] + ["default:10.0.0.7"]
    )
    assert (await b.inspect("default", "10.0.0.49"))["limit"] == "9/minute"
    await a.delete_override("default", "10.0.0.49", ACTOR)
    await b.sync()
    assert (await b.inspect("default", "10.0.0.49"))["limit"] == "3/minute"
    assert store.full_reads == 1
