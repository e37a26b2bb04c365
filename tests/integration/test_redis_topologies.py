"""Redis Cluster and Sentinel, from Debian's redis-server on loopback ports."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.rates import Rate
from pingpong.core.storage import Check, StorageOptions
from pingpong.core.storage.redis.cluster import RedisClusterStorage
from pingpong.core.storage.redis.standalone import redis_key
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.waiting import wait_until


def test_cluster_shares_limits_and_refunds_across_slots(
    pingpong: PingpongFactory, storage_cluster: RedisCluster, tmp_path: Path
) -> None:
    config = tmp_path / "pingpong.yaml"
    config.write_text(
        "policies:\n"
        "  - {name: per-ip, rate: 2/minute}\n"
        "  - {name: everyone, key: global, rate: 100/hour}  # no token regained during the test\n"
        "trusted_proxies: [127.0.0.0/8]\n"
    )
    url = storage_cluster.url
    a = pingpong("--config", str(config), "--storage", url, env={"PINGPONG_STORAGE_TIMEOUT": "1"})
    b = pingpong("--config", str(config), "--storage", url, env={"PINGPONG_STORAGE_TIMEOUT": "1"})

    def get(server: Pingpong, client: str) -> httpx.Response:
        return httpx.get(server.url + "/ping", headers={"X-Forwarded-For": client})

    codes = [get(server, "198.51.100.1").status_code for server in (a, b, a, b, a)]
    assert codes == [200, 200, 429, 429, 429]  # shared across replicas
    # The three rejected requests were refunded in the global policy's slot.
    other = get(b, "198.51.100.2")
    assert '"everyone";r=97;' in other.headers["ratelimit"]
    stored = storage_cluster.keys()  # every node's keys
    limiter_keys = {k for k in stored if not k.startswith("pp:{pp-admin}")}
    assert limiter_keys == {  # beside them, the control plane's top counts
        "pp:{per-ip:198.51.100.1}",
        "pp:{per-ip:198.51.100.2}",
        "pp:{everyone:*}",
    }
    assert "storage error" not in a.output() + b.output()


def test_sentinel_follows_the_new_primary(
    pingpong: PingpongFactory, storage_sentinel: RedisSentinel
) -> None:
    primary, replica = storage_sentinel.master, storage_sentinel.replica
    server = pingpong(
        "--storage", storage_sentinel.url, "--limit", "1000/minute",
        "--trusted-proxy", "127.0.0.1/32",
        env={"PINGPONG_STORAGE_TIMEOUT": "0.5", "PINGPONG_CIRCUIT_RESET": "0.5"},
    )  # fmt: skip
    assert httpx.get(server.url + "/ping").status_code == 200
    assert primary.cli("EXISTS", "pp:{default:127.0.0.1}") == "1"
    primary.kill()  # the sentinel promotes the replica after ~1 s
    wait_until(lambda: "role:master" in replica.cli("INFO", "replication"), 20)
    started = time.monotonic()

    def on_new_primary() -> bool:
        # A client never seen before: its key can only come from a write to the new primary.
        response = httpx.get(server.url + "/ping", headers={"X-Forwarded-For": "198.51.100.77"})
        assert response.status_code in (200, 429)
        return replica.cli("EXISTS", "pp:{default:198.51.100.77}") == "1"

    wait_until(on_new_primary, 15)
    assert time.monotonic() - started < 10
    assert "Traceback" not in server.output()


@pytest.mark.asyncio
async def test_cluster_batches_concurrent_decisions_per_slot(
    storage_cluster: RedisCluster,
) -> None:
    """Concurrent decisions on one slot cost one EVALSHA, as on one server: a
    round trip per decision through the cluster client's Python routing is what
    starved a replica on a busy core."""
    storage = RedisClusterStorage.from_url(storage_cluster.url, StorageOptions(timeout=1.0))
    limit = Limit(Algorithm.GCRA, Rate(1000, 1), 1000)
    keys = [f"batch:198.51.100.{n}" for n in range(1, 5)]  # on different slots
    try:
        await storage.ping()
        decided = await asyncio.gather(
            *(storage.acquire([Check(keys[i % 4], limit, False)]) for i in range(200))
        )
    finally:
        await storage.aclose()
    assert all(outcome.admitted for (outcome,) in decided)
    calls = sum(
        node_calls(node.cli("INFO", "commandstats"), "evalsha") for node in storage_cluster.nodes
    )
    slots = len({key_slot(redis_key(key).encode()) for key in keys})
    assert calls <= slots, f"{calls} EVALSHA for 200 decisions on {slots} slots"


def node_calls(commandstats: str, command: str) -> int:
    line = next((x for x in commandstats.splitlines() if x.startswith(f"cmdstat_{command}:")), "")
    return int(line.split("calls=")[1].split(",")[0]) if line else 0
