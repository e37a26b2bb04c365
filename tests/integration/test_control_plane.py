"""The control plane on every topology, with what the storage hands back
treated as untrusted: entries written straight into Redis (garbage in the
change log, an override holding Infinity or a foreign field) are skipped and
counted, and the replicas keep following; the list is paginated."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.exceptions import ResponseError

from pingpong.core.storage.redis.admin import LOG, OVERRIDES, SEQ
from pingpong.service.override_request import MAX_BATCH
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.topologies import RedisTopology, Topology
from tests.integration.test_admin import AUTH, admin_cli, ping, replica, seconds_until

SHARED = ["redis", "rediss", "sentinel", "cluster"]
DEFAULT_POLICY = '"default";q=3;w=60'
POLICY_50 = '"default";q=50;w=30'
INFINITE = (
    '{"policy":"default","key":"203.0.113.77","rate":"1000/minute","burst":null,'
    '"expires_at":Infinity,"reason":"","created_by":"someone-else","created_at":0}'
)
FOREIGN = (
    '{"policy":"default","key":"203.0.113.78","rate":"1000/minute","burst":null,'
    '"expires_at":4102444800,"reason":"","created_by":"x","created_at":4102444000,"admin":1}'
)


def strict_json(text: str) -> Any:
    """JSON as a strict parser reads it: no NaN or Infinity."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in a JSON answer")

    return json.loads(text, parse_constant=refuse)


def invalid_count(metrics_url: str) -> float:
    text = httpx.get(metrics_url + "/metrics").text
    found = re.search(r"^pingpong_control_entries_invalid_total (\S+)$", text, re.M)
    assert found is not None, "the counter is not exported"
    return float(found.group(1))


ANNOUNCE_BY_HAND = """
redis.call('LPUSH', KEYS[2], 'garbage-entry')
local seq = redis.call('INCR', KEYS[1])
redis.call('LPUSH', KEYS[2], seq .. ' default:203.0.113.77', seq .. ' default:203.0.113.78')
"""


def admin_node(topology: Topology) -> RedisServer:
    """The redis-server that holds the admin store's keys (one hash slot)."""
    if isinstance(topology, RedisTopology):
        return topology.server
    if isinstance(topology, RedisSentinel):
        return topology.master
    assert isinstance(topology, RedisCluster)
    for node in topology.nodes:
        with node.client() as client:
            try:
                client.exists(OVERRIDES)
            except ResponseError:  # MOVED: another node's slot
                continue
            return node
    raise AssertionError("no node holds the admin store's slot")


def write_straight_into(server: RedisServer) -> None:
    """What someone with the storage's credentials (not the admin API) writes:
    two bad overrides, a garbage log entry, and an announcement naming them."""
    with server.client() as client:
        client.hset(OVERRIDES, "default:203.0.113.77", INFINITE)
        client.hset(OVERRIDES, "default:203.0.113.78", FOREIGN)
        # Atomically, as a replica announces (else a replica may read the new
        # counter before the entries and rightly take them as already seen).
        client.eval(ANNOUNCE_BY_HAND, 2, SEQ, LOG)


@pytest.mark.parametrize("topology", SHARED)
def test_bad_entries_in_the_storage_are_skipped_counted_and_followed_past(
    pingpong: Any, request: pytest.FixtureRequest, topology: str
) -> None:
    storage: Topology = request.getfixturevalue(f"storage_{topology}")
    a, admin_a = replica(pingpong, storage.url)
    b, admin_b = replica(pingpong, storage.url)
    # B follows the log already (else its first sync reads every override instead).
    body = {"rate": "100/minute", "burst": 50, "expires_in": 60}
    put = httpx.put(admin_a + "/admin/v1/overrides/default/203.0.113.50", json=body, headers=AUTH)
    assert put.status_code == 200, put.text
    seen = {"X-Forwarded-For": "203.0.113.50"}
    assert seconds_until(lambda: ping(b, seen).headers["ratelimit-policy"] == POLICY_50) < 1.0
    write_straight_into(admin_node(storage))
    # B reads the announcement: the garbage entry and both overrides, all refused.
    assert seconds_until(lambda: invalid_count(b.url) == 3, 5.0) < 5.0
    for server in (a, b):
        enforced = ping(server, {"X-Forwarded-For": "203.0.113.77"})
        assert enforced.headers["ratelimit-policy"] == DEFAULT_POLICY
    # ... and keeps following: an override through A is enforced on B.
    body = {"rate": "100/minute", "burst": 50, "expires_in": 60, "reason": topology}
    put = httpx.put(admin_a + "/admin/v1/overrides/default/203.0.113.9", json=body, headers=AUTH)
    assert put.status_code == 200, put.text
    assert seconds_until(lambda: ping(b).headers["ratelimit-policy"] == POLICY_50) < 1.0
    # The list answers strict JSON with the valid override only.
    listed = httpx.get(admin_b + "/admin/v1/overrides", headers=AUTH)
    assert listed.status_code == 200
    page = strict_json(listed.text)
    assert [o["key"] for o in page["overrides"]] == ["203.0.113.50", "203.0.113.9"]
    assert page["next_cursor"] is None
    assert invalid_count(b.url) == 5  # the list read both bad overrides again
    shown = admin_cli(admin_b, "overrides")
    assert shown.returncode == 0, shown.stderr
    assert [line.split(":")[0] for line in shown.stdout.splitlines()] == [
        "default 203.0.113.50",
        "default 203.0.113.9",
    ]
    logged = b.output()
    assert "Traceback" not in logged and "unexpected error" not in logged
    assert logged.count("skipped an invalid") == 1  # one line a minute, however many


@pytest.mark.parametrize("topology", ["memory", *SHARED])
def test_the_list_comes_a_page_at_a_time(
    pingpong: Any, request: pytest.FixtureRequest, topology: str
) -> None:
    storage: Topology = request.getfixturevalue(f"storage_{topology}")
    _server, admin_a = replica(pingpong, storage.url)
    keys = [f"198.51.100.{i}" for i in range(5)]
    for key in reversed(keys):
        body = {"rate": "10/minute", "expires_in": 600}
        put = httpx.put(f"{admin_a}/admin/v1/overrides/default/{key}", json=body, headers=AUTH)
        assert put.status_code == 200, put.text
    seen, cursor, pages = [], "", 0
    while True:
        query: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = httpx.get(admin_a + "/admin/v1/overrides", params=query, headers=AUTH)
        assert answer.status_code == 200, answer.text
        page = strict_json(answer.text)
        seen += [o["key"] for o in page["overrides"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == keys and pages == 3
    bad_queries: list[dict[str, str | int]] = [{"limit": 0}, {"limit": 1001}, {"cursor": "a b"}]
    for bad in bad_queries:
        assert (
            httpx.get(admin_a + "/admin/v1/overrides", params=bad, headers=AUTH).status_code == 400
        )
    shown = admin_cli(admin_a, "overrides")
    assert shown.returncode == 0 and all(key in shown.stdout for key in keys)


@pytest.mark.parametrize("topology", ["memory", *SHARED])
def test_an_import_is_stored_in_batches_and_followed_by_every_replica(
    pingpong: Any, request: pytest.FixtureRequest, topology: str, tmp_path: Path
) -> None:
    storage: Topology = request.getfixturevalue(f"storage_{topology}")
    servers = [replica(pingpong, storage.url) for _ in range(1 if topology == "memory" else 2)]
    admin_a = servers[0][1]
    keys = [f"198.51.{i // 250}.{i % 250}" for i in range(MAX_BATCH + 50)]  # two batches
    lines = [{"policy": "default", "key": k, "rate": "100/minute", "burst": 50,
              "expires_in": 30, "reason": f"import {i}"} for i, k in enumerate(keys)]  # fmt: skip
    source = tmp_path / "overrides.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    shown = admin_cli(admin_a, "import", str(source))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"imported {len(keys)} overrides (0 of them replaced)"

    def enforced_everywhere() -> bool:  # the first and the last, on every replica
        headers = [ping(server, {"X-Forwarded-For": key}).headers for server, _ in servers
                   for key in (keys[0], keys[-1])]  # fmt: skip
        return all(h["ratelimit-policy"] == POLICY_50 for h in headers)

    assert seconds_until(enforced_everywhere) < 2.0
    listed = admin_cli(admin_a, "overrides", "--json")
    assert sorted(o["key"] for o in json.loads(listed.stdout)["overrides"]) == sorted(keys)
    # A bad line refuses its batch, names its line, and stores nothing of it.
    lines[MAX_BATCH + 7]["rate"] = "10/fortnight"
    source.write_text("".join(json.dumps({**line, "burst": 10}) + "\n" for line in lines))
    refused = admin_cli(admin_a, "import", str(source))
    assert refused.returncode == 2
    assert f"line {MAX_BATCH + 8}: rate: invalid rate" in refused.stderr, refused.stderr
    assert f"{MAX_BATCH} imported before it" in refused.stderr
    listed = json.loads(admin_cli(admin_a, "overrides", "--json").stdout)["overrides"]
    bursts = {o["key"]: o["burst"] for o in listed}
    assert bursts == {k: 10 if i < MAX_BATCH else 50 for i, k in enumerate(keys)}
