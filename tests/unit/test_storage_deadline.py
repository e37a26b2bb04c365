"""The storage budget charges the storage, not this replica's own queueing."""

from __future__ import annotations

import asyncio
import time

import pytest

from pingpong.core.looplag import LoopLag
from pingpong.core.storage.deadline import OVERLOAD_SECONDS, Overloaded, storage_deadline


def block_loop(seconds: float) -> None:
    time.sleep(seconds)  # the replica busy: CPU-starved, or another request's work


async def answer_after(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "answer"


async def wait_for(budget: float, storage: float, blocked: float, lag: LoopLag) -> str:
    loop = asyncio.get_running_loop()
    loop.call_later(0.002, block_loop, blocked)
    async with storage_deadline(budget, lag):
        return await answer_after(storage)


def test_a_blocked_loop_is_not_charged_to_the_storage() -> None:
    """The storage answers in 10 ms, the loop is stuck for 200 ms: a plain
    50 ms timeout blames the storage; the storage deadline does not."""

    async def plain() -> None:
        asyncio.get_running_loop().call_later(0.002, block_loop, 0.2)
        async with asyncio.timeout(0.05):
            await answer_after(0.01)

    with pytest.raises(TimeoutError):
        asyncio.run(plain())

    async def lag_aware() -> str:
        return await wait_for(0.05, 0.01, 0.2, LoopLag())

    assert asyncio.run(lag_aware()) == "answer"


def test_a_slow_storage_times_out_within_its_budget() -> None:
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            await wait_for(0.05, 5.0, 0.0, LoopLag())
        assert not isinstance(raised.value, Overloaded)
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.05


def test_a_loop_lagging_past_the_cap_is_overload_not_a_storage_failure() -> None:
    async def main() -> None:
        asyncio.get_running_loop().call_later(0.002, block_loop, OVERLOAD_SECONDS + 0.1)
        with pytest.raises(Overloaded):
            async with storage_deadline(0.05, LoopLag()):
                await answer_after(60.0)

    asyncio.run(main())


def test_the_monitor_sees_the_lag_it_reports() -> None:
    seen: list[float] = []

    async def main() -> LoopLag:
        lag = LoopLag()
        lag.observers.append(seen.append)
        lag.ensure_started()
        await asyncio.sleep(0.05)
        block_loop(0.15)
        assert lag.current() >= 0.1  # overdue right now, before its tick ran
        await asyncio.sleep(0.05)
        return lag

    lag = asyncio.run(main())
    assert max(seen) >= 0.1 and lag.total() >= 0.1
