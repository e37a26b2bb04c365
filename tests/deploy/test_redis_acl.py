"""The ElastiCache RBAC users of deploy/terraform/elasticache.tf, run for real:
a redis-server whose users have exactly the access strings terraform gives
ElastiCache (deploy/terraform/redis-acl/*.acl), the service and redis_exporter
against it.

Redis ACL (redis.io/docs/latest/operate/oss_and_stack/management/security/acl/):
a command or key outside a user's rules fails with NOPERM and is recorded in
ACL LOG. So the service's whole life on Redis (decisions, reset, override,
the change feed, top counts) must leave ACL LOG empty, and the exporter must
report the server (redis_up 1) without being able to read a key.
ElastiCache takes the same access-string syntax ("Authenticating users with
Role-Based Access Control (RBAC)", specifying permissions using an access
string).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from pingpong_toolkit.ports import free_port, wait_for_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.redis import EXPORTER_USER, SERVICE_USER, RedisServer, terraform_users
from pingpong_toolkit.waiting import wait_until

TOKEN = "acl-test-token-0123456789"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORDS = {"service": "service-pw-0123456789", "exporter": "exporter-pw-0123456789"}


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Default user off (as elasticache.tf), the two users of terraform (the
    toolkit's, as the suite's TLS topology runs them), the service's the
    client's; ``cli()`` is the toolkit's unrestricted user, for ACL LOG."""
    users = terraform_users(PASSWORDS["service"], PASSWORDS["exporter"])
    server = RedisServer(username=SERVICE_USER, password=PASSWORDS["service"], acl_users=users,
                         workdir=tmp_path)  # fmt: skip
    server.start()
    yield server
    server.stop()


def as_user(server: RedisServer, name: str) -> redis.Redis:
    user = SERVICE_USER if name == "service" else EXPORTER_USER
    return server.client(username=user, password=PASSWORDS[name])


def test_the_service_user_runs_the_service_and_nothing_else(
    acl_redis: RedisServer, pingpong: Any
) -> None:
    url = acl_redis.url
    ports = [free_port(), free_port()]
    env = {"PINGPONG_ADMIN_TOKEN": TOKEN, "PINGPONG_LOG_FORMAT": "text"}
    flags = ["--storage", url, "--limit", "3/minute", "--trusted-proxy", "127.0.0.0/8"]
    a, b = (pingpong(*flags, "--admin-port", str(port), env=env) for port in ports)
    admin = f"http://127.0.0.1:{ports[0]}/admin/v1"
    client = {"X-Forwarded-For": "203.0.113.9"}
    statuses = [httpx.get(s.url + "/ping", headers=client).status_code for s in (a, b, a, b)]
    assert statuses == [200, 200, 200, 429]  # one limit, decided in Redis
    assert httpx.delete(f"{admin}/clients/default/203.0.113.9", headers=AUTH).status_code == 200
    body = {"rate": "100/minute", "burst": 50, "expires_in": 30, "reason": "acl"}
    put = httpx.put(f"{admin}/overrides/default/203.0.113.9", json=body, headers=AUTH)
    assert put.status_code == 200, put.text
    overridden = '"default";q=50;w=30'
    wait_until(
        lambda: (
            httpx.get(b.url + "/ping", headers=client).headers["ratelimit-policy"] == overridden
        ),
        timeout=5,
    )
    assert httpx.get(f"{admin}/overrides", headers=AUTH).json()["overrides"]
    time.sleep(1.5)  # the top counts' once-a-second merge runs at least once
    denied = acl_redis.acl_log()
    assert denied == "", f"commands or keys the service needs but may not use: {denied}"
    assert acl_redis.cli("KEYS", "pp:*")  # the service did write its keys
    service = as_user(acl_redis, "service")
    for forbidden in (lambda: service.get("other-app:key"), service.flushall,
                      lambda: service.config_get("*"), lambda: service.keys("*")):  # fmt: skip
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()


def test_the_exporter_user_reads_statistics_never_keys(
    acl_redis: RedisServer, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus-redis-exporter")
    assert binary, "prometheus-redis-exporter is not installed (scripts/install-system-deps.sh)"
    as_user(acl_redis, "service").set("pp:{default:203.0.113.9}", "tat")
    port = free_port()
    exporter = Process.start(
        "redis-exporter",
        [binary, "--redis.addr", f"redis://127.0.0.1:{acl_redis.port}",
         "--redis.user", "pingpong-exporter", "--redis.password", PASSWORDS["exporter"],
         "--web.listen-address", f"127.0.0.1:{port}"],
        log=tmp_path / "exporter.log",
    )  # fmt: skip
    try:
        assert wait_for_port(port, timeout=10)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        exporter.stop()
    samples = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")
    )
    assert samples["redis_up"] == "1"
    assert float(samples["redis_connected_clients"]) >= 1
    assert "redis_memory_used_bytes" in samples
    exporter_user = as_user(acl_redis, "exporter")
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_user.get("pp:{default:203.0.113.9}")
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_user.set("pp:x", "1")
