"""The admin API end to end, on real processes: two replicas on one real
Redis (and one on memory://), reset and override through replica A seen by
replica B within a second, top, auth, the public port, and the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.topologies import Topology

TOKEN = "integration-token-0123456789"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PINGPONG_ADMIN_TOKEN": TOKEN, "PINGPONG_LOG_FORMAT": "text"}
CLIENT = {"X-Forwarded-For": "203.0.113.9"}  # the proxy (loopback) is trusted


def replica(pingpong: Any, storage: str, *extra: str) -> tuple[Pingpong, str]:
    port = free_port()
    server = pingpong(
        "--storage", storage, "--limit", "3/minute", "--admin-port", str(port),
        "--trusted-proxy", "127.0.0.0/8", *extra, env=ENV,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def ping(server: Pingpong, client: dict[str, str] = CLIENT) -> httpx.Response:
    return httpx.get(server.url + "/ping", headers=client)


def seconds_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, "condition not met"
        time.sleep(0.01)
    return time.monotonic() - started


def test_two_replicas_on_redis_agree_within_a_second(
    pingpong: Any, redis_server: RedisServer
) -> None:
    a, admin_a = replica(pingpong, redis_server.url)
    b, admin_b = replica(pingpong, redis_server.url)
    assert [ping(a).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [ping(b).status_code for _ in range(3)] == [429] * 3  # B's deny cache holds it now

    state = httpx.get(admin_b + "/admin/v1/clients/default/203.0.113.9", headers=AUTH).json()
    assert state["remaining"] == 0 and state["retry_after_seconds"] >= 1

    # Reset through A: admitted on B within 1 s (its deny cache invalidated too).
    reset = httpx.delete(admin_a + "/admin/v1/clients/default/203.0.113.9", headers=AUTH)
    assert reset.status_code == 200
    took = seconds_until(lambda: ping(b).status_code == 200)
    print(f"reset through A admitted on B after {took * 1000:.0f} ms")
    assert took < 1.0

    # An override through A is enforced by B within 1 s, with matching headers.
    body = {"rate": "100/minute", "burst": 50, "expires_in": 4, "reason": "e2e"}
    put = httpx.put(admin_a + "/admin/v1/overrides/default/203.0.113.9", json=body, headers=AUTH)
    assert put.status_code == 200, put.text
    expires_at = put.json()["override"]["expires_at"]
    policy = '"default";q=50;w=30'
    took = seconds_until(lambda: ping(b).headers["ratelimit-policy"] == policy)
    print(f"override through A enforced on B after {took * 1000:.0f} ms")
    assert took < 1.0
    assert ping(a).headers["ratelimit-policy"] == policy
    assert [ping(b).status_code for _ in range(10)] == [200] * 10  # over the policy's 3
    other = ping(b, {"X-Forwarded-For": "203.0.113.10"})
    assert other.headers["ratelimit-policy"] == '"default";q=3;w=60'
    listed = httpx.get(admin_b + "/admin/v1/overrides", headers=AUTH).json()["overrides"]
    assert [(o["key"], o["reason"]) for o in listed] == [("203.0.113.9", "e2e")]

    # It expires on time, on both.
    time.sleep(max(0.0, expires_at - time.time() - 0.5))
    assert ping(b).headers["ratelimit-policy"] == policy  # still in force just before
    time.sleep(0.6)
    for server in (a, b):
        assert ping(server).headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert httpx.get(admin_a + "/admin/v1/overrides", headers=AUTH).json()["overrides"] == []

    # Top: the flooding client first, counted across both replicas.
    flood = {"X-Forwarded-For": "198.51.100.66"}
    for server, times in ((a, 30), (b, 20)):
        for _ in range(times):
            ping(server, flood)
    for _ in range(6):
        ping(a, {"X-Forwarded-For": "198.51.100.7"})

    def top() -> list[dict[str, Any]]:
        answer = httpx.get(admin_b + "/admin/v1/top?policy=default&window=300", headers=AUTH)
        return answer.json()["top"]  # type: ignore[no-any-return]

    def counts() -> dict[str, int]:
        return {r["key"]: r["rejected"] for r in top()}

    # Each replica merges its counts into Redis once a second.
    took = seconds_until(lambda: counts().get("198.51.100.7") == 3 and len(counts()) == 3, 5)
    print(f"top complete on B after {took * 1000:.0f} ms")
    rows = top()
    assert (rows[0]["key"], rows[0]["rejected"]) == ("198.51.100.66", 47)  # 50 - 3 admitted
    assert "admin reset default:203.0.113.9 by default" in a.output()
    assert "admin override_put default:203.0.113.9 by default" in a.output()
    metrics = httpx.get(a.url + "/metrics").text
    assert 'pingpong_admin_operations_total{operation="reset",result="ok"} 1.0' in metrics
    assert 'route="/admin' not in metrics  # never counted as public traffic


def test_auth_and_the_public_port(pingpong: Any) -> None:
    server, admin = replica(pingpong, "memory://")
    for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
        answer = httpx.get(admin + "/admin/v1/overrides", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
    for path in ("/admin/v1/overrides", "/admin/v1/clients/default/127.0.0.1"):
        assert httpx.get(server.url + path, headers=AUTH).status_code == 404
    assert httpx.get(admin + "/ping", headers=AUTH).status_code == 404
    document = httpx.get(admin + "/openapi.json").json()
    assert "/admin/v1/top" in document["paths"]
    assert "admin: unauthorized request from 127.0.0.1" in server.output()
    metrics = httpx.get(server.url + "/metrics").text
    assert (
        'pingpong_admin_operations_total{operation="unauthorized",result="unauthorized"} 2.0'
        in (metrics)
    )


def admin_cli(url: str, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingpong", "admin", *args, "--url", url, "--token", token],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_cli_on_one_memory_replica(pingpong: Any) -> None:
    server, admin = replica(pingpong, "memory://")
    for _ in range(5):
        ping(server)
    shown = admin_cli(admin, "inspect", "default", "203.0.113.9")
    assert shown.returncode == 0, shown.stderr
    assert "default 203.0.113.9: 0 of 3 left (limit 3/minute, gcra)" in shown.stdout
    as_json = json.loads(admin_cli(admin, "inspect", "default", "--ip", "203.0.113.9",
                                   "--json").stdout)  # fmt: skip
    assert as_json["key"] == "203.0.113.9" and as_json["remaining"] == 0
    top = admin_cli(admin, "top", "--policy", "default")
    assert top.returncode == 0 and top.stdout.splitlines()[1].split() == [
        "2", "default", "203.0.113.9",
    ]  # fmt: skip
    assert admin_cli(admin, "reset", "default", "203.0.113.9").stdout.strip() == (
        "reset default 203.0.113.9"
    )
    assert ping(server).status_code == 200
    put = admin_cli(admin, "override", "default", "203.0.113.9", "--rate", "10/minute",
                    "--burst", "20", "--expires-in", "600", "--reason", "ticket 7")  # fmt: skip
    assert put.returncode == 0 and "10/minute burst 20 until" in put.stdout
    assert ping(server).headers["ratelimit-policy"] == '"default";q=20;w=120'
    listed = admin_cli(admin, "overrides")
    assert (
        "default 203.0.113.9: 10/minute burst 20" in listed.stdout and "ticket 7" in listed.stdout
    )
    assert admin_cli(admin, "override", "default", "203.0.113.9", "--delete").returncode == 0
    assert admin_cli(admin, "overrides").stdout.strip() == "no overrides"
    # Exit codes: 1 not found, 2 usage or auth.
    assert admin_cli(admin, "override", "default", "203.0.113.9", "--delete").returncode == 1
    assert admin_cli(admin, "inspect", "nope", "203.0.113.9").returncode == 1
    wrong = "wrong-token-0123456789"
    denied = admin_cli(admin, "inspect", "default", "203.0.113.9", token=wrong)
    assert denied.returncode == 2 and "401" in denied.stderr
    assert admin_cli(admin, "inspect", "default", "bad key").returncode == 2
    assert (
        admin_cli(admin, "override", "default", "1.2.3.4", "--rate", "1/fortnight").returncode == 2
    )
    assert admin_cli(admin, "bogus").returncode == 2
    assert admin_cli(f"http://127.0.0.1:{free_port()}", "overrides").returncode == 1


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingpong", "serve", "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )  # fmt: skip


def test_an_admin_port_needs_a_token_and_a_free_port(monkeypatch: Any) -> None:
    monkeypatch.delenv("PINGPONG_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("PINGPONG_ADMIN_TOKENS_FILE", raising=False)
    env = dict(os.environ)
    no_token = serve("--admin-port", str(free_port()), env=env)
    assert no_token.returncode == 2 and "admin API needs a token" in no_token.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = serve("--admin-port", str(port), env={**env, **ENV})
    assert busy.returncode == 1 and "cannot listen for admin" in busy.stderr


def test_admin_host_binds_the_admin_api_elsewhere(pingpong: Any) -> None:
    """The settings contract's proof of admin_port and admin_host."""
    server, admin = replica(pingpong, "memory://", "--admin-host", "127.0.0.2")
    elsewhere = admin.replace("127.0.0.1", "127.0.0.2")
    assert httpx.get(elsewhere + "/admin/v1/overrides", headers=AUTH).status_code == 200
    try:
        httpx.get(admin + "/admin/v1/overrides", headers=AUTH, timeout=2)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the admin API answered on the main host")
    assert httpx.get(server.url + "/healthz").status_code == 200


@pytest.mark.parametrize("topology", ["rediss", "sentinel", "cluster"])
def test_reset_and_override_reach_the_other_replica_on_every_topology(
    pingpong: Any, request: pytest.FixtureRequest, topology: str
) -> None:
    """TLS, Sentinel and Cluster too (on a Cluster redis-py's asyncio client has
    no pub/sub: replicas follow by the 0.5 s poll, still within the second)."""
    storage: Topology = request.getfixturevalue(f"storage_{topology}")
    a, admin_a = replica(pingpong, storage.url)
    b, admin_b = replica(pingpong, storage.url)
    assert [ping(a).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert ping(b).status_code == 429
    reset = httpx.delete(admin_a + "/admin/v1/clients/default/203.0.113.9", headers=AUTH)
    assert reset.status_code == 200, reset.text
    assert seconds_until(lambda: ping(b).status_code == 200) < 1.0
    body = {"rate": "100/minute", "burst": 50, "expires_in": 60, "reason": topology}
    put = httpx.put(admin_a + "/admin/v1/overrides/default/203.0.113.9", json=body, headers=AUTH)
    assert put.status_code == 200, put.text
    policy = '"default";q=50;w=30'
    assert seconds_until(lambda: ping(b).headers["ratelimit-policy"] == policy) < 1.0
    state = httpx.get(admin_b + "/admin/v1/clients/default/203.0.113.9", headers=AUTH).json()
    assert state["override"]["reason"] == topology
    assert "storage error" not in a.output() + b.output()


def test_a_body_that_never_arrives_is_cut_with_408(pingpong: Any) -> None:
    """Headers promising a body, then silence: the connection is answered 408
    after the body-read timeout (10 s), never held for as long as the client likes."""
    _, admin = replica(pingpong, "memory://")
    port = int(admin.rpartition(":")[2])
    head = (
        "PUT /admin/v1/overrides/default/203.0.113.9 HTTP/1.1\r\nHost: admin\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        "Content-Length: 60\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        answer = sock.recv(4096).decode()
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer
    assert 9.5 <= waited < 30, waited
    assert httpx.get(admin + "/admin/v1/overrides", headers=AUTH).json()["overrides"] == []
