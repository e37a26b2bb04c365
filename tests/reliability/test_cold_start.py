"""Cold replicas loaded at once, under CPU pressure, share the limit exactly.

What an autoscaler's scale-up at peak does: fresh replicas on one storage,
loaded as soon as they answer, on cores that CPU hogs also want. The shared
GCRA bound holds for each key (at most B + floor(L/T) admitted in any span L,
all replicas together), and no decision is taken without the storage while it
answers: the replicas' own queueing is never blamed on Redis.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest

from pingpong_toolkit.fixtures import FleetFactory
from pingpong_toolkit.fleet import as_another_machine, storage_reach, storage_servers
from pingpong_toolkit.hog import CpuHogs
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.topologies import Topology
from pingpong_toolkit.waiting import eventually
from tests.reliability.helpers import Pin, Sample, report, timed_load

pytestmark = pytest.mark.slow

RATE, BURST = 20, 20  # 20/second, burst 20: T = 50 ms
KEYS = [f"198.51.100.{n}" for n in range(1, 5)]
REPLICAS = 3
CONNECTIONS = 48  # per replica
SECONDS = 4.0
HOGS = 2


def admitted_within_bound(samples: list[Sample]) -> dict[str, tuple[int, int]]:
    """Per key: (admitted, B + floor(L/T)) over the span the load covered."""
    span = max(s.end for s in samples) - min(s.start for s in samples)
    bound = BURST + int(span * RATE)
    counts = Counter(s.client for s in samples if s.status == 200)
    return {key: (counts[key], bound) for key in KEYS}


# Every topology, and each failure mode on some: while Redis answers, the mode
# must never come into play (a decision taken alone in ``allow`` admits without
# counting, in ``deny`` answers 503), so one mode per topology proves it for all.
@pytest.mark.parametrize(
    ("storage", "workers", "mode"),
    [
        ("redis", 1, "allow"),
        ("rediss", 1, "deny"),
        ("sentinel", 1, "local"),
        ("cluster", 1, "allow"),
        ("redis", 2, "local"),
    ],
    indirect=["storage"],
)
def test_cold_replicas_under_cpu_pressure_admit_the_shared_bound(
    storage: Topology, workers: int, mode: str, fleet: FleetFactory, pin: Pin
) -> None:
    env = {
        "PINGPONG_LIMIT": f"{RATE}/second",
        "PINGPONG_BURST": str(BURST),
        "PINGPONG_TRUSTED_PROXY": "127.0.0.1/32",
        "PINGPONG_ON_STORAGE_ERROR": mode,
        "PINGPONG_WORKERS": str(workers),
    }
    cpus = sorted(os.sched_getaffinity(0))
    url, storage_pids = storage_reach(storage)
    as_another_machine(storage_pids, {cpus[-1]})  # not under the hogs
    replicas = fleet(REPLICAS, url, env, place=pin)  # cold: started, never loaded
    with CpuHogs(HOGS, set(cpus[:-1]) or set(cpus)):
        samples = asyncio.run(
            timed_load(replicas.urls, SECONDS, REPLICAS * CONNECTIONS, clients=KEYS)
        )
    fallbacks = replicas.metric("pingpong_storage_fallbacks_total")
    refused = sum(s.status == 503 for s in samples)
    # workers publish once a second
    eventually(lambda: replicas.metric("pingpong_http_requests_shed_total") == refused, 3.0)
    shed = replicas.metric("pingpong_http_requests_shed_total")
    errors = replicas.storage_errors()
    per_key = admitted_within_bound(samples)
    report(
        "cold_start",
        topology=storage.url.split(":")[0],
        workers=workers,
        mode=mode,
        answers=len(samples),
        admitted={k: a for k, (a, _) in per_key.items()},
        bound=next(iter(per_key.values()))[1],
        fallbacks=fallbacks,
        shed=shed,
        storage_errors=dict(errors),
    )
    # A starved replica sheds what queued in its loop (max_loop_lag): 503s, each
    # counted as shed, and never a decision taken without the storage.
    assert {s.status for s in samples} <= {200, 429, 503}
    assert refused == shed
    assert all(admitted <= bound for admitted, bound in per_key.values()), per_key
    # Redis answers throughout: no decision is taken without it, and no breaker
    # opens (the replicas' own queueing made 30-40 % of decisions local before).
    assert fallbacks == 0, f"{fallbacks} of {len(samples)} decided alone: {dict(errors)}"
    assert not errors, errors  # not even an answer waited for past its budget
    assert replicas.each("pingpong_storage_circuit_open") == [0] * REPLICAS


def connections_received(servers: list[RedisServer]) -> int:
    """Connections the storage's servers ever accepted (this call's own included)."""
    stats = [server.cli("INFO", "stats") for server in servers]
    return sum(int(x.split("total_connections_received:")[1].split()[0]) for x in stats)


@pytest.mark.parametrize("storage", ["redis", "cluster"], indirect=True)
def test_a_cold_replica_opens_its_pool_before_it_serves(
    storage: Topology, fleet: FleetFactory, pin: Pin
) -> None:
    """A replica listens once its pool is open and verified, sized for the
    burst (``storage_connections``, per node): loaded at once by 48
    connections beside the hogs, it opens no connection to Redis (opening one
    costs a round trip or two, and a TLS handshake, when the budget is tightest)."""
    env = {
        "PINGPONG_LIMIT": f"{RATE}/second",
        "PINGPONG_BURST": str(BURST),
        "PINGPONG_TRUSTED_PROXY": "127.0.0.1/32",
    }
    cpus = sorted(os.sched_getaffinity(0))
    url, pids = storage_reach(storage)
    as_another_machine(pids, {cpus[-1]})
    replica = fleet(1, url, env, place=pin)
    servers = storage_servers(storage)
    before = connections_received(servers)
    with CpuHogs(HOGS, set(cpus[:-1]) or set(cpus)):
        samples = asyncio.run(timed_load(replica.urls, 2.0, CONNECTIONS, clients=KEYS))
    opened = connections_received(servers) - before - len(servers)  # less redis-cli's
    report(
        "cold_pool", topology=url.split(":")[0], answers=len(samples), opened=opened, before=before
    )
    assert sum(s.status == 200 for s in samples) > 0
    assert replica.metric("pingpong_storage_fallbacks_total") == 0
    assert opened == 0, f"{opened} connections opened under the burst ({before} before it)"
