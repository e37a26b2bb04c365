"""Admin tokens: scopes named in the tokens file, and a file that is followed
(a removed line stops working within the poll period, a broken file grants
nothing)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from pingpong.config import Settings
from pingpong.http import admin_auth
from pingpong.http.admin import AdminApp
from pingpong.http.admin_auth import POLL_SECONDS, Tokens, load_tokens
from pingpong.service import Service
from tests.unit.test_admin import admin

READER, WRITER = "reader-token-0123456789", "writer-token-0123456789"


def line(name: str, token: str, scope: str = "") -> str:
    return f"{name}:sha256:{hashlib.sha256(token.encode()).hexdigest()}{scope}\n"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def app_with(tokens: Tokens) -> tuple[Service, AdminApp]:
    service = Service(Settings.model_validate({"limit": "3/minute"}))
    return service, AdminApp(service, tokens)


READS = [("GET", "/admin/v1/clients/default/1.2.3.4"), ("GET", "/admin/v1/overrides"),
         ("GET", "/admin/v1/top")]  # fmt: skip
WRITES = [("DELETE", "/admin/v1/clients/default/1.2.3.4"),
          ("PUT", "/admin/v1/overrides/default/1.2.3.4"),
          ("DELETE", "/admin/v1/overrides/default/1.2.3.4")]  # fmt: skip
BODY = {"rate": "10/minute", "expires_in": 60}


async def test_a_read_token_reads_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line("viewer", READER, ":read") + line("ops", WRITER, ":write"))
    service, app = app_with(load_tokens({"PINGPONG_ADMIN_TOKENS_FILE": str(path)}))
    for method, target in READS:
        assert (await admin(app, method, target, None, bearer(READER)))[0] == 200, target
    for method, target in WRITES:
        body = BODY if method == "PUT" else None
        status, problem, _ = await admin(app, method, target, body, bearer(READER))
        assert status == 403 and "'read'" in problem["detail"], target
    assert service.limiter.overrides == {}
    assert service.counters.admin_operations[("reset", "forbidden")] == 1
    for method, target in WRITES[:2]:  # the writer may (then the delete finds it)
        body = BODY if method == "PUT" else None
        assert (await admin(app, method, target, body, bearer(WRITER)))[0] == 200, target
    assert (await admin(app, "DELETE", WRITES[2][1], None, bearer(WRITER)))[0] == 200


def test_a_line_without_a_scope_is_write_and_a_bad_scope_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line("ops", WRITER))
    token = load_tokens({"PINGPONG_ADMIN_TOKENS_FILE": str(path)}).find(f"Bearer {WRITER}")
    assert token is not None and token.scope == "write" and token.allows("write")
    path.write_text(line("ops", WRITER, ":admin"))
    with pytest.raises(ValueError, match="line 1"):
        load_tokens({"PINGPONG_ADMIN_TOKENS_FILE": str(path)})


def test_a_removed_token_is_refused_within_the_poll_period(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "tokens"
    path.write_text(line("alice", READER) + line("bob", WRITER))
    tokens = Tokens(path=path, clock=lambda: now[0])
    assert tokens.find(f"Bearer {WRITER}") is not None
    path.write_text(line("alice", READER))  # bob revoked
    now[0] += POLL_SECONDS - 0.01
    assert tokens.find(f"Bearer {WRITER}") is not None  # not looked at yet
    now[0] += 0.01
    assert tokens.find(f"Bearer {WRITER}") is None
    assert tokens.find(f"Bearer {READER}") is not None
    path.write_text(line("alice", READER) + line("bob", WRITER))
    tokens.reload()  # SIGHUP: at once
    assert tokens.find(f"Bearer {WRITER}") is not None


def test_a_broken_file_grants_nothing_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text(line("bob", WRITER))
    env = {"PINGPONG_ADMIN_TOKENS_FILE": str(path), "PINGPONG_ADMIN_TOKEN": READER}
    tokens = load_tokens(env)
    path.write_text(line("bob", WRITER) + "garbage\n")
    with caplog.at_level(logging.ERROR, "pingpong.admin"):
        tokens.reload()
    assert tokens.find(f"Bearer {WRITER}") is None
    assert tokens.find(f"Bearer {READER}") is not None  # the variable's token stays
    assert "line 2" in caplog.text
    path.unlink()
    tokens.reload()
    assert tokens.find(f"Bearer {WRITER}") is None
    path.write_text(line("bob", WRITER))
    tokens.reload()
    assert tokens.find(f"Bearer {WRITER}") is not None


def test_the_poll_reads_the_file_only_when_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most one read per POLL_SECONDS, however many requests ask."""
    now = [0.0]
    path = tmp_path / "tokens"
    path.write_text(line("bob", WRITER))
    tokens = Tokens(path=path, clock=lambda: now[0])
    reads: list[Path] = []
    real = admin_auth._read_bytes

    def counted(path: Path) -> bytes | None:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(admin_auth, "_read_bytes", counted)
    for _ in range(1000):
        tokens.find(f"Bearer {WRITER}")
        now[0] += POLL_SECONDS / 100
    assert 9 <= len(reads) <= 10  # 20 s of requests, a read every 2 s
