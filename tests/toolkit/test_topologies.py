"""Every storage topology fixture serves a real pingpong, and its faults bite."""

from __future__ import annotations

import httpx
import pytest

from pingpong_toolkit.fixtures import TOPOLOGIES, PingpongFactory
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.topologies import RedisTopology, Topology
from pingpong_toolkit.waiting import wait_until

# Decisions on Redis, or 503: a fault shows instead of being absorbed locally.
STRICT = {"PINGPONG_ON_STORAGE_ERROR": "deny", "PINGPONG_STORAGE_TIMEOUT": "1",
          "PINGPONG_CIRCUIT_RESET": "0.2"}  # fmt: skip


def codes(url: str, n: int) -> list[int]:
    with httpx.Client(timeout=5) as client:
        return [client.get(url + "/ping").status_code for _ in range(n)]


@pytest.mark.parametrize("storage", TOPOLOGIES, indirect=True)
def test_one_shared_limit_on_every_topology(storage: Topology, pingpong: PingpongFactory) -> None:
    a = pingpong("--storage", storage.url, "--limit", "3/minute", env=STRICT)
    if storage.url == "memory://":
        assert codes(a.url, 4) == [200, 200, 200, 429]
        return
    b = pingpong("--storage", storage.url, "--limit", "3/minute", env=STRICT)
    assert codes(a.url, 2) + codes(b.url, 2) == [200, 200, 200, 429]  # shared by a and b


def test_redis_kill_restart_and_proxy_faults(
    storage_redis: RedisTopology, pingpong: PingpongFactory
) -> None:
    server = pingpong("--storage", storage_redis.url, "--limit", "100/minute", env=STRICT)
    assert codes(server.url, 1) == [200]
    storage_redis.proxy.stall()
    assert codes(server.url, 1) == [503]  # nothing comes back within the timeout
    storage_redis.proxy.heal()
    wait_until(lambda: codes(server.url, 1) == [200], 5)
    storage_redis.kill()
    wait_until(lambda: codes(server.url, 1) == [503], 5)
    storage_redis.restart()
    wait_until(lambda: codes(server.url, 1) == [200], 5)


def test_cluster_is_ok_and_a_killed_node_fails_its_slots(storage_cluster: RedisCluster) -> None:
    assert storage_cluster.state_ok()
    storage_cluster.kill_node(1)
    wait_until(lambda: "cluster_state:fail" in storage_cluster.nodes[0].cli("CLUSTER", "INFO"), 10)
    storage_cluster.restart_node(1)
    storage_cluster.wait_ok()


def test_sentinel_failover_promotes_the_replica(storage_sentinel: RedisSentinel) -> None:
    before = storage_sentinel.master
    after = storage_sentinel.failover()
    assert after is not before and storage_sentinel.master is after
