"""Revocation on a running service: a line removed from the tokens file stops
working within the poll period (2 s), at once after SIGHUP, with --workers too;
read-scoped tokens cannot change anything."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until

ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"
POLL_SECONDS = 2.0


def line(name: str, token: str, scope: str = "") -> str:
    return f"{name}:sha256:{hashlib.sha256(token.encode()).hexdigest()}{scope}\n"


def status(admin: str, token: str, method: str = "GET", path: str = "overrides") -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{admin}/admin/v1/{path}", headers=headers).status_code


def start(pingpong: PingpongFactory, tokens: Path, *extra: str) -> tuple[object, str]:
    port = free_port()
    env = {"PINGPONG_ADMIN_TOKENS_FILE": str(tokens), "PINGPONG_LOG_FORMAT": "text"}
    server = pingpong("--admin-port", str(port), *extra, env=env)
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_removed_token_is_refused_within_the_poll_period(
    pingpong: PingpongFactory, tmp_path: Path, redis_server: RedisServer, workers: int
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(line("alice", ALICE) + line("bob", BOB))
    storage = "memory://" if workers == 1 else redis_server.url
    _, admin = start(pingpong, tokens, "--workers", str(workers), "--storage", storage)
    assert status(admin, BOB) == 200
    tokens.write_text(line("alice", ALICE))
    removed = time.monotonic()
    answers = []  # (seconds since the removal, status), on whichever worker
    while time.monotonic() - removed < POLL_SECONDS + 0.5:
        answers.append((time.monotonic() - removed, status(admin, BOB)))
    late = [(round(t, 2), s) for t, s in answers if t > POLL_SECONDS and s != 401]
    assert late == []  # every worker refuses it once the poll period has passed
    assert answers[-1][1] == 401
    for _ in range(4 * workers):
        assert status(admin, BOB) == 401 and status(admin, ALICE) == 200


def test_sighup_rereads_the_tokens_at_once(pingpong: PingpongFactory, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(line("alice", ALICE) + line("bob", BOB))
    server, admin = start(pingpong, tokens)
    assert status(admin, BOB) == 200  # the file was just looked at
    tokens.write_text(line("alice", ALICE))
    server.signal(signal.SIGHUP)  # type: ignore[attr-defined]
    wait_until(lambda: "admin tokens reloaded: alice (write)" in server.output(), timeout=5)  # type: ignore[attr-defined]
    assert status(admin, BOB) == 401


def test_a_read_token_cannot_change_anything(pingpong: PingpongFactory, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(line("viewer", ALICE, ":read") + line("ops", BOB, ":write"))
    _, admin = start(pingpong, tokens)
    assert status(admin, ALICE, "GET", "clients/default/203.0.113.9") == 200
    assert status(admin, ALICE, "DELETE", "clients/default/203.0.113.9") == 403
    assert status(admin, BOB, "DELETE", "clients/default/203.0.113.9") == 200
