"""N pingpong replicas sharing one storage topology: what a scale-up at peak,
an outage drill or an accuracy run starts, and what is read back from them.

``start_fleet(3, topology, env, log_dir)`` launches every replica before
waiting for any (their startups overlap, as an autoscaler's do) and answers a
``Fleet``: the servers, their URLs and their /metrics summed over the fleet.
The storage is reached around any fault proxy (``storage_reach``): the proxy
is a thread of the caller, which would share the load generator's core.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from pingpong_toolkit.pingpong import NotServing, Pingpong
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.topologies import RedisTopology, Topology

Place = Callable[[int], None]  # puts a process (by PID) on the cores it should use


def storage_servers(topology: Topology) -> list[RedisServer]:
    """The redis-servers behind ``topology`` (none for memory://)."""
    if isinstance(topology, RedisTopology):
        return [topology.server]
    if isinstance(topology, RedisCluster):
        return list(topology.nodes)
    if isinstance(topology, RedisSentinel):
        return list(topology.servers)
    return []


def storage_reach(topology: Topology) -> tuple[str, list[int]]:
    """The storage's URL around any fault proxy, and its processes' PIDs."""
    url = topology.server.url if isinstance(topology, RedisTopology) else topology.url
    pids = [s.process.pid for s in storage_servers(topology) if s.process]
    if isinstance(topology, RedisSentinel):
        pids += [p.pid for p in topology.sentinels]
    return url, pids


def as_another_machine(pids: list[int], cpus: set[int]) -> None:
    """Put the storage's processes on ``cpus``, ahead of everything else there
    (nice -10, where this process may raise a priority). In production the
    storage is another machine: a test must not make Redis late by starving it
    behind its own load generator, then count that against the replicas."""
    for pid in pids:
        os.sched_setaffinity(pid, cpus)
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, pid, -10)


def metric_total(text: str, name: str) -> float:
    """Sum of the samples whose line starts with ``name`` (a name, or name{labels)."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


@dataclass
class Fleet:
    """Running replicas of one storage."""

    servers: list[Pingpong]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    @property
    def pids(self) -> list[int]:
        return [server.process.pid for server in self.servers if server.process]

    def metric(self, name: str) -> float:
        """``name`` summed over every replica's /metrics."""
        return sum(metric_total(httpx.get(url + "/metrics").text, name) for url in self.urls)

    def each(self, name: str) -> list[float]:
        """``name`` on each replica."""
        return [metric_total(httpx.get(url + "/metrics").text, name) for url in self.urls]

    def storage_errors(self) -> Counter[str]:
        """``pingpong_storage_errors_total`` by kind, over the fleet."""
        errors = Counter[str]()
        for url in self.urls:
            for line in httpx.get(url + "/metrics").text.splitlines():
                if line.startswith("pingpong_storage_errors_total{"):
                    kind = line.split('error="')[1].split('"')[0]
                    errors[kind] += int(float(line.split()[-1]))
        return errors

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_fleet(
    count: int,
    storage_url: str,
    env: Mapping[str, str],
    log_dir: Path,
    place: Place | None = None,
    timeout: float = 30.0,
) -> Fleet:
    """``count`` replicas of ``pingpong serve --storage storage_url``, each placed
    by ``place`` as soon as it runs; answers once every one serves /healthz
    (stopping them all if one never does)."""
    fleet = Fleet(
        [Pingpong(["--storage", storage_url], env, name=f"replica-{i}") for i in range(count)]
    )
    for server in fleet.servers:
        server.launch(log_dir / f"{server.name}-{server.port}.log")
        if place is not None and server.process is not None:
            place(server.process.pid)
    try:
        for server in fleet.servers:
            server.wait_until("/healthz", timeout)
    except NotServing:
        fleet.stop()
        raise
    return fleet
