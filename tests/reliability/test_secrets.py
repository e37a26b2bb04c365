"""Secrets stay secret: API keys (compared by digest, never logged, never a
metric label), the Redis password, and Redis over TLS with AUTH."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import redis

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.policy import Policy, Tier
from pingpong.core.rates import Rate
from pingpong.core.storage.memory import MemoryStorage
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.tls import make_certificates
from pingpong_toolkit.waiting import wait_until

API_KEY = "pp-live-3f9a8c1d2e7b4a60"
WRONG_KEY = "pp-live-guessed-0000000"
REDIS_PASSWORD = "redis-pw-7c2d9e41"  # noqa: S105 - a throwaway test password
# Every label of pingpong's metrics: each takes a bounded set of values.
BOUNDED_LABELS = {
    "method", "route", "status", "policy", "decision", "storage", "error", "mode", "le",
    "version", "commit", "slot",
    "result", "operation",  # config reloads and admin operations: fixed names
    "hash",  # pingpong_config_info: the running config's hash, one at a time
}  # fmt: skip


def test_tier_lookup_is_by_sha256_digest() -> None:
    limit = Limit(Algorithm.GCRA, Rate(3, 60), 3)
    by_digest = Tier("gold", limit, frozenset({hashlib.sha256(API_KEY.encode()).digest()}))
    by_plain = Tier("plain", limit, frozenset({API_KEY.encode()}))  # a key stored as such
    policies = [Policy("per-client", Limit(Algorithm.GCRA, Rate(1, 60), 1))]

    async def tiers_of(tier: Tier, key: str) -> list[str]:
        limiter = Limiter(Rules(policies, tiers=[tier]), MemoryStorage())
        decision = await limiter.check("/ping", "GET", "192.0.2.1", {"x-api-key": key})
        return [reported.policy.name for reported in decision.reported]

    assert asyncio.run(tiers_of(by_digest, API_KEY)) == ["gold"]
    assert asyncio.run(tiers_of(by_digest, WRONG_KEY)) == ["per-client"]
    # The presented key is hashed before the lookup: a table holding the key
    # itself never matches it.
    assert asyncio.run(tiers_of(by_plain, API_KEY)) == ["per-client"]


def test_api_keys_never_in_logs_metrics_or_redis(
    pingpong: PingpongFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    config = tmp_path / "pingpong.yaml"
    config.write_text(
        f"""
policies: [{{name: per-client, rate: 2/minute}}]
api_keys:
  header: X-API-Key
  tiers: [{{name: gold, rate: 5/minute, keys: ["sha256:{digest}"]}}]
"""
    )
    server = pingpong(
        "--config", str(config), "--storage", redis_server.url, "--access-log", "1",
        "--trusted-proxy", "127.0.0.1/32",
    )  # fmt: skip
    statuses = []
    with httpx.Client() as client:
        for key in [API_KEY] * 7 + [WRONG_KEY] * 3:
            for address in ("198.51.100.7", "2001:db8::7"):
                headers = {"X-API-Key": key, "X-Forwarded-For": address}
                statuses.append(client.get(server.url + "/ping", headers=headers).status_code)
        metrics = client.get(server.url + "/metrics").text
    assert statuses.count(200) == 5 + 2 * 2 and statuses.count(429) == 11
    wait_until(lambda: server.output().count('"pingpong.access"') >= 20)
    check = subprocess.run(
        [sys.executable, "-m", "pingpong", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    redis_keys = " ".join(redis_server.cli("--scan").split())
    for place, text in [
        ("logs", server.output()),
        ("metrics", metrics),
        ("redis keys", redis_keys),
        ("check-config", check.stdout + check.stderr),
    ]:
        for secret in (API_KEY, WRONG_KEY, digest):
            assert secret not in text, f"{secret} in {place}"
    assert "pp:{gold:" in redis_keys  # counted per key, under a truncated digest
    # No per-client label in /metrics: no address, no key, a bounded label set.
    for line in metrics.splitlines():
        assert "198.51.100.7" not in line and "2001:db8" not in line, line
    names = {
        pair.split("=", 1)[0]
        for line in metrics.splitlines()
        if line.startswith("pingpong_") and "{" in line
        for pair in line.split("{", 1)[1].rsplit("}", 1)[0].split('",')
    }
    assert names <= BOUNDED_LABELS, names - BOUNDED_LABELS


def test_redis_password_never_printed(pingpong: PingpongFactory, tmp_path: Path) -> None:
    """The storage URL may carry the Redis password (PINGPONG_STORAGE is a
    secret): neither check-config nor the server's logs may show it."""
    port = free_port()  # nothing listens: the server logs its storage errors
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    config = tmp_path / "pingpong.yaml"
    config.write_text(f"storage: {url}\n")
    check = subprocess.run(
        [sys.executable, "-m", "pingpong", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    server = pingpong("--storage", url, "--access-log", "1")
    httpx.get(server.url + "/ping")
    wait_until(lambda: "storage error" in server.output())
    assert REDIS_PASSWORD not in server.output()
    assert REDIS_PASSWORD not in check.stdout + check.stderr, check.stdout


def limiter_keys_of(client: redis.Redis) -> set[str]:
    """The rate-limit keys, without the control plane's ({pp-admin})."""
    names = {k.decode() if isinstance(k, bytes) else str(k) for k in client.keys("pp:*")}
    return {name for name in names if not name.startswith("pp:{pp-admin}")}


def logged(server: Pingpong, text: str) -> bool:
    return text in server.output()


def test_redis_over_tls_with_auth(pingpong: PingpongFactory, tmp_path: Path) -> None:
    """rediss://user:password@host/db?ssl_ca_certs=CA against Debian's
    redis-server with TLS on and no plain port: shared limits work, the
    certificate is verified, a wrong password or an unknown CA never reaches
    Redis (and never a 500)."""
    certs = make_certificates(tmp_path / "tls")
    tls = RedisServer(
        workdir=tmp_path / "redis", tls=certs, username="pingpong", password=REDIS_PASSWORD
    )
    tls_port = tls.port  # TLS only: no plain-text port at all
    admin = tls.client()
    try:
        tls.start()
        good = f"rediss://pingpong:{REDIS_PASSWORD}@127.0.0.1:{tls_port}/0?ssl_ca_certs={certs.ca}"
        assert tls.url == good
        slow_ok = {"PINGPONG_STORAGE_TIMEOUT": "1", "PINGPONG_ON_STORAGE_ERROR": "deny"}
        a = pingpong("--storage", good, "--limit", "3/minute", env=slow_ok)
        b = pingpong("--storage", good, "--limit", "3/minute", env=slow_ok)
        codes = [httpx.get(r.url + "/ping").status_code for r in (a, b, a, b)]
        assert codes == [200, 200, 200, 429]  # one shared limit, over TLS
        limiter_keys = limiter_keys_of(admin)
        assert len(limiter_keys) == 1  # (the control plane keeps its counts beside it)
        assert "storage error" not in a.output() + b.output()

        # A wrong password, a plain-text client, an unknown CA: nothing decided
        # by Redis, deny mode answers 503 (never 500), the password never shown.
        bad_urls = [
            good.replace(REDIS_PASSWORD, "wrong-password"),
            good.replace("rediss://", "redis://").split("?")[0],
            good.split("?")[0] + f"?ssl_ca_certs={certs.cert}",  # not the CA
        ]
        for url in bad_urls:
            bad = pingpong("--storage", url, "--limit", "3/minute", env=slow_ok)
            assert httpx.get(bad.url + "/ping").status_code == 503
            wait_until(partial(logged, bad, "storage error"))
            assert REDIS_PASSWORD not in bad.output()
            assert "Traceback" not in bad.output()
            bad.stop()
        assert limiter_keys_of(admin) == limiter_keys
    finally:
        admin.close()
        tls.stop()
