"""What one announced change costs every other replica, in measures the machine's
noise cannot move: Redis commands, CPU time per sync, the longest event-loop step.

Two ``Service`` objects (replicas A and B) share one real redis-server, in one
process: A stores ``overrides`` overrides, B syncs once (the full read), then
A makes ``changes`` changes one at a time and B follows each with one
incremental sync (read the log entries, ``HMGET`` the named keys, validate,
apply to its limiter). Counted on B's syncs only:

- the Redis commands they send (``INFO commandstats``, reset before): the same
  for 100 overrides stored as for 10,000, or a sync is not O(1) in them;
- their CPU time (``time.thread_time``, this thread only: a preempted sync is
  not charged for the wait), per sync;
- the longest single step of a sync's task (from one ``await`` to the next):
  what the event loop is blocked for at most, so what a ``/ping`` arriving
  meanwhile can wait at most for it; apart from it, the CPU time of the
  garbage collections that fell into a step (a full collection walks every
  object alive, the stored overrides included, whoever allocated last).

With ``cpu_per_sync`` and 100 changes a second, B spends ``100 * cpu_per_sync``
a second (a share of a core) and no request waits more than the longest step.

And what the stored overrides add to every full garbage collection (which
pauses the replica's event loop whoever triggers it): the objects the
collector tracks per override and replica (``gc.get_objects()``), and the
CPU time of a full collection before the load and after it, in the same run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import types
from collections.abc import Coroutine, Generator
from typing import Any

from pingpong.config import Settings
from pingpong.service.control import Actor
from pingpong.service.override_request import OverrideRequest
from pingpong.service.runtime import Service
from pingpong_toolkit.redis import RedisServer

ACTOR = Actor("bench", "bench-1")
LOAD_IN_FLIGHT = 64
FULL_COLLECTIONS = 5  # timed, the median reported


def key(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


class Collections:
    """The thread CPU seconds spent in garbage collections so far (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started


COLLECTIONS = Collections()
Step = tuple[float, float, float]  # wall, thread CPU, of which garbage collection


@types.coroutine
def stepped(coro: Coroutine[Any, Any, Any], steps: list[Step]) -> Generator[Any, Any, Any]:
    """Drive ``coro`` exactly as its task would, recording each step: a step
    runs from a resume to the next suspension, without the loop running
    anything else in between."""
    value: Any = None
    error: BaseException | None = None
    while True:
        start = (time.perf_counter(), time.thread_time(), COLLECTIONS.seconds)
        try:
            yielded = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as done:
            steps.append(since(start))
            return done.value
        steps.append(since(start))
        try:
            value, error = (yield yielded), None
        except BaseException as exc:  # the task's cancellation or a future's error
            value, error = None, exc


def since(start: Step) -> Step:
    wall, cpu, collected = start
    return (time.perf_counter() - wall, time.thread_time() - cpu, COLLECTIONS.seconds - collected)


def commandstats(client: Any) -> dict[str, int]:
    """Calls per command so far (on one connection kept open, so that reading
    them adds nothing but the ``INFO`` itself)."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}
    # What Redis has sent (this INFO's own answer is counted once it is sent:
    # in the next reading, the same few hundred bytes each time).
    calls["bytes_sent"] = int(client.info("stats")["total_net_output_bytes"])
    return calls


async def load(a: Service, count: int) -> float:
    """Seconds for A to store ``count`` overrides, ``LOAD_IN_FLIGHT`` at once."""
    body = {"rate": "1000/minute", "burst": 100, "expires_in": 3600, "reason": "bulk"}
    request = OverrideRequest.model_validate(body)
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await a.control.put_override("default", key(i), request, ACTOR)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(LOAD_IN_FLIGHT)))
    return time.monotonic() - started


async def change(a: Service, i: int, count: int) -> None:
    """The i-th change on A, spread over the stored overrides: a replacement or a reset."""
    target = key(i * 7919 % count)
    if i % 2:
        body = {"rate": f"{1000 + i % 50}/minute", "expires_in": 3600, "reason": "op"}
        request = OverrideRequest.model_validate(body)
        await a.control.put_override("default", target, request, ACTOR)
    else:
        await a.control.reset("default", target, ACTOR)


async def follow(
    a: Service, b: Service, redis: RedisServer, count: int, changes: int
) -> dict[str, Any]:
    """B's syncs after each of ``changes`` changes on A (``count`` stored)."""
    await b.control.sync()  # the full read a starting replica makes
    steps: list[Step] = []
    commands: dict[str, int] = {}
    sent = 0
    with redis.client() as inspector:
        for i in range(changes):
            await change(a, i, count)
            before = commandstats(inspector)
            await stepped(b.control.sync(), steps)
            after = commandstats(inspector)
            sent += after["bytes_sent"] - before["bytes_sent"]
            for name, calls in after.items():  # only B's commands fall between the reads
                if name != "info" and name != "bytes_sent" and calls > before.get(name, 0):
                    commands[name] = commands.get(name, 0) + calls - before.get(name, 0)
    assert b.limiter.overrides.keys() == a.limiter.overrides.keys(), "B did not follow A"
    cpu_per_sync = sum(cpu - collected for _, cpu, collected in steps) / changes
    return {
        "overrides": count,
        "changes": changes,
        "redis_commands_per_sync": {k: n / changes for k, n in sorted(commands.items())},
        "redis_bytes_per_sync": sent / changes,
        "cpu_us_per_sync": 1e6 * cpu_per_sync,
        "steps_per_sync": len(steps) / changes,
        "longest_step_cpu_us": 1e6 * max(cpu - collected for _, cpu, collected in steps),
        "longest_step_wall_us": 1e6 * max(wall - collected for wall, _, collected in steps),
        "median_step_wall_us": 1e6 * statistics.median(wall for wall, _, _ in steps),
        "longest_collection_in_a_step_us": 1e6 * max(collected for _, _, collected in steps),
        "collection_us_per_sync": 1e6 * sum(collected for _, _, collected in steps) / changes,
        "core_share_at_100_per_s": 100 * cpu_per_sync,
    }


def full_collection() -> tuple[int, float]:
    """The objects the collector tracks, and the median CPU time of a full
    collection (from ``gc.callbacks``: the collector's own time)."""
    times = []
    for _ in range(FULL_COLLECTIONS):
        before = COLLECTIONS.seconds
        gc.collect()
        times.append(COLLECTIONS.seconds - before)
    return len(gc.get_objects()), statistics.median(times)


async def measure_async(url: str, redis: RedisServer, count: int, changes: int) -> dict[str, Any]:
    settings = Settings(storage=url, limit="100000000/second")
    a, b = Service(settings), Service(settings)
    gc.callbacks.append(COLLECTIONS)
    try:
        tracked_before, empty = full_collection()
        load_seconds = await load(a, count)
        result = await follow(a, b, redis, count, changes)
        tracked_after, loaded = full_collection()
    finally:
        gc.callbacks.remove(COLLECTIONS)
        for service in (a, b):
            await service.storage.aclose()
    return {
        **result,
        "in_process_load_seconds": load_seconds,
        # Both replicas hold every override.
        "tracked_objects_per_override": (tracked_after - tracked_before) / (2 * max(count, 1)),
        "full_collection_us_before_load": 1e6 * empty,
        "full_collection_us_loaded": 1e6 * loaded,
    }


def measure(redis: RedisServer, count: int, changes: int) -> dict[str, Any]:
    """Against ``redis`` (emptied first)."""
    redis.cli("FLUSHALL")
    return asyncio.run(measure_async(redis.url, redis, count, changes))
