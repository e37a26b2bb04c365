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

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.hog import CpuHogs
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.topologies import RedisTopology, Topology
from pingpong_toolkit.waiting import eventually
from tests.reliability.helpers import Pin, Sample, metric, report, timed_load

pytestmark = pytest.mark.slow

RATE, BURST = 20, 20  # 20/second, burst 20: T = 50 ms
KEYS = [f"198.51.100.{n}" for n in range(1, 5)]
REPLICAS = 3
CONNECTIONS = 48  # per replica
SECONDS = 4.0
HOGS = 2


def storage_processes(topology: Topology) -> tuple[str, list[int]]:
    """The storage's URL around any fault proxy (a thread of this process: it
    would share the load generator's core and GIL), and its processes' PIDs."""
    if isinstance(topology, RedisTopology):
        servers, url = [topology.server], topology.server.url
    elif isinstance(topology, RedisCluster):
        servers, url = topology.nodes, topology.url
    else:
        assert isinstance(topology, RedisSentinel)
        servers, url = topology.servers, topology.url
        pids = [p.pid for p in topology.sentinels]
        return url, pids + [s.process.pid for s in servers if s.process]
    return url, [s.process.pid for s in servers if s.process]


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
    storage: Topology, workers: int, mode: str, pingpong: PingpongFactory, pin: Pin
) -> None:
    env = {
        "PINGPONG_LIMIT": f"{RATE}/second",
        "PINGPONG_BURST": str(BURST),
        "PINGPONG_TRUSTED_PROXY": "127.0.0.1/32",
        "PINGPONG_ON_STORAGE_ERROR": mode,
        "PINGPONG_WORKERS": str(workers),
    }
    cpus = sorted(os.sched_getaffinity(0))
    url, storage_pids = storage_processes(storage)
    for pid in storage_pids:  # the storage is another machine: not under the hogs
        os.sched_setaffinity(pid, {cpus[-1]})
    servers = [pingpong("--storage", url, env=env) for _ in range(REPLICAS)]
    for server in servers:  # cold: started, never loaded
        assert server.process is not None
        pin(server.process.pid)
    with CpuHogs(HOGS, set(cpus[:-1]) or set(cpus)):
        samples = asyncio.run(
            timed_load([s.url for s in servers], SECONDS, REPLICAS * CONNECTIONS, clients=KEYS)
        )
    fallbacks = sum(metric(s.url, "pingpong_storage_fallbacks_total") for s in servers)
    refused = sum(s.status == 503 for s in samples)

    def shed_counted() -> float:
        return sum(metric(s.url, "pingpong_http_requests_shed_total") for s in servers)

    eventually(lambda: shed_counted() == refused, 3.0)  # workers publish once a second
    shed = shed_counted()
    errors = Counter[str]()
    for server in servers:
        for line in httpx.get(server.url + "/metrics").text.splitlines():
            if line.startswith("pingpong_storage_errors_total{"):
                errors[line.split('error="')[1].split('"')[0]] += int(float(line.split()[-1]))
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
    assert all(metric(s.url, "pingpong_storage_circuit_open") == 0 for s in servers)
