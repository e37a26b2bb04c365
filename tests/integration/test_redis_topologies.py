"""Redis Cluster and Sentinel, from Debian's redis-server on loopback ports."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.commands import require
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(n: int) -> list[int]:
    """n consecutive ports whose cluster bus ports (+10000) are free too."""
    for _ in range(100):
        base = random.randint(20000, 29000)
        ports = list(range(base, base + n))
        if all(port_free(p) and port_free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free port range for a cluster")


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    nodes = []
    for port in cluster_ports(3):
        node = RedisServer(
            port,
            ["--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / f"{port}.conf")],
        )
        node.start()
        nodes.append(node)
    subprocess.run(
        [require("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
         "--cluster-replicas", "0", "--cluster-yes"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    wait_until(lambda: "cluster_state:ok" in nodes[0].cli("CLUSTER", "INFO"), 15)
    yield nodes
    for node in nodes:
        node.stop()


def test_cluster_shares_limits_and_refunds_across_slots(pingpong, redis_cluster, tmp_path) -> None:
    config = tmp_path / "pingpong.yaml"
    config.write_text(
        "policies:\n"
        "  - {name: per-ip, rate: 2/minute}\n"
        "  - {name: everyone, key: global, rate: 100/minute}\n"
        "trusted_proxies: [127.0.0.0/8]\n"
    )
    url = f"redis+cluster://127.0.0.1:{redis_cluster[0].port}"
    a = pingpong("--config", str(config), "--storage", url, env={"PINGPONG_STORAGE_TIMEOUT": "1"})
    b = pingpong("--config", str(config), "--storage", url, env={"PINGPONG_STORAGE_TIMEOUT": "1"})

    def get(server, client: str) -> httpx.Response:  # type: ignore[no-untyped-def]
        return httpx.get(server.url + "/ping", headers={"X-Forwarded-For": client})

    codes = [get(server, "198.51.100.1").status_code for server in (a, b, a, b, a)]
    assert codes == [200, 200, 429, 429, 429]  # shared across replicas
    # The three rejected requests were refunded in the global policy's slot.
    other = get(b, "198.51.100.2")
    assert '"everyone";r=97;' in other.headers["ratelimit"]
    keys = set()
    for node in redis_cluster:
        keys |= set(node.cli("KEYS", "*").split())
    assert keys == {"pp:{per-ip:198.51.100.1}", "pp:{per-ip:198.51.100.2}", "pp:{everyone:*}"}
    assert "storage error" not in a.output() + b.output()


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, int]]:
    primary = RedisServer(free_port())
    primary.start()
    replica = RedisServer(free_port(), ["--replicaof", "127.0.0.1", str(primary.port)])
    replica.start()
    sentinel_port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\n"
        f"sentinel monitor pp 127.0.0.1 {primary.port} 1\n"
        "sentinel down-after-milliseconds pp 1000\n"
        "sentinel failover-timeout pp 5000\n"
    )
    sentinel = subprocess.Popen(
        [require("redis-sentinel"), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    check = ["redis-cli", "-p", str(sentinel_port), "SENTINEL", "replicas", "pp"]
    wait_until(lambda: "slave" in subprocess.run(check, capture_output=True, text=True).stdout, 15)
    yield primary, replica, sentinel_port
    sentinel.kill()
    sentinel.wait(5)
    primary.stop()
    replica.stop()


def test_sentinel_follows_the_new_primary(pingpong, sentinel_setup) -> None:
    primary, replica, sentinel_port = sentinel_setup
    server = pingpong(
        "--storage", f"redis+sentinel://127.0.0.1:{sentinel_port}/pp", "--limit", "1000/minute",
        "--trusted-proxy", "127.0.0.1/32",
        env={"PINGPONG_STORAGE_TIMEOUT": "0.5", "PINGPONG_CIRCUIT_RESET": "0.5"},
    )  # fmt: skip
    assert httpx.get(server.url + "/ping").status_code == 200
    assert primary.cli("DBSIZE") == "1"
    primary.stop()  # the sentinel promotes the replica after ~1 s
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
