"""The admin API in process: auth, every operation, and hostile input (4xx
problem+json, never a 500, nothing changed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from pingpong import __version__
from pingpong.config import Settings
from pingpong.core.heavy_hitters import HeavyHitters, merge_top
from pingpong.core.overrides import Override, check_key
from pingpong.core.rates import Rate
from pingpong.http.admin import AdminApp
from pingpong.http.admin_auth import Token, Tokens, load_tokens
from pingpong.http.admin_openapi import admin_openapi_document
from pingpong.http.app import App
from pingpong.service import Service
from tests.unit.rsgi import Answer, FakeHeaders, FakeScope, call

TOKEN = "test-token-0123456789"  # noqa: S105 - a test token
AUTH = [("authorization", f"Bearer {TOKEN}")]


class BodyProto:
    """A FakeProto that also hands over a request body, in chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.answer: Answer | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk

        return chunks()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = Answer(status, dict(headers), body)


async def admin(
    app: AdminApp,
    method: str,
    path: str,
    body: Any = None,
    headers: Iterable[tuple[str, str]] = AUTH,
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    target, _, query = path.partition("?")
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else b""
    proto = BodyProto([data[i : i + 1000] for i in range(0, len(data), 1000)])
    scope = FakeScope(target, method, query_string=query, headers=FakeHeaders(headers))
    await app(scope, proto)  # type: ignore[arg-type]
    assert proto.answer is not None
    answer = proto.answer
    assert answer.status != 500, answer.body
    if answer.status >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
    return answer.status, json.loads(answer.body), answer.headers


def make(**settings: Any) -> tuple[Service, App, AdminApp]:
    service = Service(Settings.model_validate({"limit": "3/minute", **settings}))
    tokens = Tokens([Token("ops", hashlib.sha256(TOKEN.encode()).digest())])
    return service, App(service), AdminApp(service, tokens)


async def test_missing_or_wrong_token_is_401_and_counted() -> None:
    service, _, app = make()
    wrong = [
        [],
        [("authorization", "Bearer wrong-token-0123456789")],
        [("authorization", f"Basic {TOKEN}")],
        [("authorization", "Bearer ")],
    ]
    for headers in wrong:
        status, _, answer_headers = await admin(app, "GET", "/admin/v1/overrides", None, headers)
        assert status == 401
        assert answer_headers["www-authenticate"].startswith("Bearer")
    assert service.counters.admin_operations[("unauthorized", "unauthorized")] == 4
    assert not service.counters.requests  # admin requests are not /ping traffic


async def test_inspect_reset_and_headers_of_an_override() -> None:
    service, public, app = make()
    assert [(await call(public, "/ping")).status for _ in range(4)] == [200, 200, 200, 429]
    status, state, _ = await admin(app, "GET", "/admin/v1/clients/default/127.0.0.1")
    assert status == 200
    assert state["remaining"] == 0 and state["retry_after_seconds"] >= 1
    assert state["limit"] == "3/minute" and state["override"] is None
    status, by_ip, _ = await admin(app, "GET", "/admin/v1/clients/default?ip=::ffff:127.0.0.1")
    assert status == 200 and by_ip["key"] == "127.0.0.1"

    status, _, _ = await admin(app, "DELETE", "/admin/v1/clients/default/127.0.0.1")
    assert status == 200
    status, state, _ = await admin(app, "GET", "/admin/v1/clients/default/127.0.0.1")
    assert (state["remaining"], state["reset_seconds"], state["retry_after_seconds"]) == (3, 0, 0)

    body = {"rate": "10/minute", "burst": 20, "expires_in": 60, "reason": "ticket 42"}
    status, put, _ = await admin(app, "PUT", "/admin/v1/overrides/default/127.0.0.1", body)
    assert status == 200 and put["override"]["created_by"] == "ops"
    answer = await call(public, "/ping")
    assert answer.headers["ratelimit-policy"] == '"default";q=20;w=120'
    other = await call(public, "/ping", client="10.0.0.1:1")
    assert other.headers["ratelimit-policy"] == '"default";q=3;w=60'
    status, state, _ = await admin(app, "GET", "/admin/v1/clients/default/127.0.0.1")
    assert state["burst"] == 20 and state["override"]["reason"] == "ticket 42"
    status, listed, _ = await admin(app, "GET", "/admin/v1/overrides")
    assert [o["key"] for o in listed["overrides"]] == ["127.0.0.1"]
    status, _, _ = await admin(app, "DELETE", "/admin/v1/overrides/default/127.0.0.1")
    assert status == 200
    assert (await call(public, "/ping")).headers["ratelimit-policy"] == '"default";q=3;w=60'
    status, _, _ = await admin(app, "DELETE", "/admin/v1/overrides/default/127.0.0.1")
    assert status == 404
    ops = service.counters.admin_operations
    assert ops[("override_put", "ok")] == 1 and ops[("override_delete", "not_found")] == 1


async def test_an_override_expires_on_time() -> None:
    service, public, app = make()
    now = [1_000_000.0]
    service.control._clock = lambda: now[0]
    body = {"rate": "10/minute", "expires_in": 5}
    assert (await admin(app, "PUT", "/admin/v1/overrides/default/127.0.0.1", body))[0] == 200
    override = service.limiter.overrides["default:127.0.0.1"]
    assert override.expires_at == 1_000_005.0
    # The limiter enforces the expiry by the wall clock, to the second.
    service.limiter.set_overrides([Override("default", "127.0.0.1", Rate(10, 60), None, 0.0)])
    assert (await call(public, "/ping")).headers["ratelimit-policy"] == '"default";q=3;w=60'
    now[0] += 6
    assert (await admin(app, "GET", "/admin/v1/overrides"))[1]["overrides"] == []


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/admin/v1/clients/default/not a key", None, 400),
    ("GET", "/admin/v1/clients/default/" + "1" * 129, None, 400),
    ("GET", "/admin/v1/clients/default/%00", None, 400),
    ("GET", "/admin/v1/clients/default?ip=999.1.1.1", None, 400),
    ("GET", "/admin/v1/clients/default/1.2.3.4?ip=1.2.3.4", None, 400),
    ("GET", "/admin/v1/clients/default", None, 400),
    ("GET", "/admin/v1/clients/nope/1.2.3.4", None, 404),
    ("GET", "/admin/v1/clients/default/1.2.3.4?bogus=1", None, 400),
    ("POST", "/admin/v1/clients/default/1.2.3.4", None, 405),
    ("GET", "/admin/v1/nothing", None, 404),
    ("GET", "/admin/v2/overrides", None, 404),
    ("GET", "/admin/v1/top?window=0", None, 400),
    ("GET", "/admin/v1/top?window=99999", None, 400),
    ("GET", "/admin/v1/top?window=abc", None, 400),
    ("GET", "/admin/v1/top?policy=nope", None, 404),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": "10/fortnight", "expires_in": 5}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": "0/minute", "expires_in": 5}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": "10/minute"}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": "1/s", "expires_in": 0}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": "1/second", "expires_in": "5"}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", {"rate": 5, "expires_in": 5}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4",
     {"rate": "1/second", "expires_in": 5, "burst": 0}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4",
     {"rate": "1/second", "expires_in": 5, "burst": True}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4",
     {"rate": "1/second", "expires_in": 5, "extra": 1}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4",
     {"rate": "1/second", "expires_in": 5, "reason": "x" * 501}, 422),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4",
     {"rate": "1/31536000s", "burst": 1000000000, "expires_in": 5}, 400),
    ("PUT", "/admin/v1/overrides/default/1.2.3.4", [1, 2], 422),
    ("PUT", "/admin/v1/overrides/nope/1.2.3.4", {"rate": "1/second", "expires_in": 5}, 404),
    ("PUT", "/admin/v1/overrides/default/bad key", {"rate": "1/second", "expires_in": 5}, 400),
    ("PUT", "/admin/v1/overrides/default/", {"rate": "1/second", "expires_in": 5}, 404),
    ("DELETE", "/admin/v1/overrides/default/1.2.3.4", None, 404),
])  # fmt: skip
async def test_bad_input_is_a_4xx_and_changes_nothing(
    method: str, path: str, body: Any, status: int
) -> None:
    service, public, app = make()
    await call(public, "/ping")
    got, problem, _ = await admin(app, method, path, body)
    assert got == status, problem
    assert problem["status"] == status and problem["detail"]
    assert service.limiter.overrides == {}
    assert (await admin(app, "GET", "/admin/v1/overrides"))[1]["overrides"] == []
    state = (await admin(app, "GET", "/admin/v1/clients/default/127.0.0.1"))[1]
    assert state["remaining"] == 2  # the one /ping still counted: nothing was reset


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe", b"", b'{"rate": "1/s"' * 10])
async def test_malformed_json_is_422(raw: bytes) -> None:
    _, _, app = make()
    status, problem, _ = await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", raw=raw)
    assert status == 422, problem


async def test_an_oversize_body_is_413_however_it_comes() -> None:
    _, _, app = make()
    big = json.dumps({"rate": "1/second", "expires_in": 5, "reason": "x" * 5000}).encode()
    status, _, _ = await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", raw=big)
    assert status == 413  # streamed without a length
    declared = [*AUTH, ("content-length", "999999")]
    status, _, _ = await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", {}, declared)
    assert status == 413
    status, _, _ = await admin(
        app, "PUT", "/admin/v1/overrides/default/1.2.3.4", {}, [*AUTH, ("content-length", "-1")]
    )
    assert status == 413


async def test_overrides_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pingpong.service.control.MAX_OVERRIDES", 3)
    _, _, app = make()
    body = {"rate": "1/second", "expires_in": 60}
    for i in range(3):
        assert (await admin(app, "PUT", f"/admin/v1/overrides/default/10.0.0.{i}", body))[0] == 200
    status, problem, _ = await admin(app, "PUT", "/admin/v1/overrides/default/10.0.0.9", body)
    assert status == 409 and "at most 3" in problem["detail"]
    # Replacing one that exists is still fine.
    assert (await admin(app, "PUT", "/admin/v1/overrides/default/10.0.0.1", body))[0] == 200


async def test_top_lists_the_most_throttled_first() -> None:
    service, public, app = make()
    for _ in range(20):
        await call(public, "/ping", client="10.9.9.9:1")
    for _ in range(6):
        await call(public, "/ping", client="10.1.1.1:1")
    status, top, _ = await admin(app, "GET", "/admin/v1/top?policy=default&window=60")
    assert status == 200
    assert [(r["key"], r["rejected"]) for r in top["top"]] == [("10.9.9.9", 17), ("10.1.1.1", 3)]
    await service.control.flush()  # merged into the storage: still counted once
    status, top, _ = await admin(app, "GET", "/admin/v1/top")
    assert [(r["key"], r["rejected"]) for r in top["top"]] == [("10.9.9.9", 17), ("10.1.1.1", 3)]


def test_heavy_hitters_stay_bounded_and_keep_the_heavy_one() -> None:
    hitters = HeavyHitters(capacity=10)
    for i in range(10_000):
        hitters.add(f"p:{i}")
        if i % 3 == 0:
            hitters.add("p:heavy")
    assert len(hitters.counts) <= 10
    rows = merge_top([hitters.drain()], None, 1)
    assert rows[0][:2] == ("p", "heavy")
    assert hitters.counts == {}


def test_client_keys() -> None:
    for good in ("203.0.113.9", "2001:db8::/64", "*", "ip=10.0.0.1", "ab12" * 6):
        assert check_key(good) == good
    for bad in ("", "a b", "x" * 129, "k\n", "é", "a%2f"):
        with pytest.raises(ValueError, match="client key"):
            check_key(bad)


def test_tokens_file_and_variable(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"file-token-0123456789").hexdigest()
    path = tmp_path / "tokens"
    path.write_text(f"# ops\nalice:sha256:{digest}\n\n")
    tokens = load_tokens({"PINGPONG_ADMIN_TOKENS_FILE": str(path), "PINGPONG_ADMIN_TOKEN": TOKEN})
    assert tokens.find("Bearer file-token-0123456789") == Token("alice", bytes.fromhex(digest))
    assert tokens.find(f"bearer {TOKEN}").name == "default"  # type: ignore[union-attr]
    assert tokens.find("Bearer file-token-012345678") is None
    assert tokens.find(None) is None
    path.write_text("alice:file-token-0123456789\n")  # a token in clear is refused
    with pytest.raises(ValueError, match="line 1"):
        load_tokens({"PINGPONG_ADMIN_TOKENS_FILE": str(path)})
    with pytest.raises(ValueError, match="at least 16"):
        load_tokens({"PINGPONG_ADMIN_TOKEN": "short"})
    assert not load_tokens({})


async def test_the_admin_openapi_document_lists_every_route() -> None:
    _, _, app = make()
    status, document, _ = await admin(app, "GET", "/openapi.json", headers=[])
    assert status == 200 and document == json.loads(json.dumps(admin_openapi_document(__version__)))
    assert set(document["paths"]) == {
        "/admin/v1/clients/{policy}/{key}", "/admin/v1/clients/{policy}",
        "/admin/v1/overrides/{policy}/{key}", "/admin/v1/overrides", "/admin/v1/top",
        "/openapi.json",
    }  # fmt: skip
    methods = {m for item in document["paths"].values() for m in item if m != "parameters"}
    assert methods == {"get", "put", "post", "delete"}


async def test_the_public_app_has_no_admin_routes() -> None:
    _, public, _ = make()
    for path in ("/admin/v1/overrides", "/admin/v1/clients/default/127.0.0.1"):
        assert (await call(public, path, headers=AUTH)).status == 404


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123_x.y:z", True), ("a" * 128, True), ("a" * 129, False), ("bad id", False),
     ("x\u00e9", False), ("<script>", False), ("tab\there", False)],
)  # fmt: skip
async def test_admin_request_ids_follow_the_public_rule(given: str, kept: bool) -> None:
    """Both listeners' ids land in the same logs: one rule for both."""
    _, public, app = make()
    headers = [*AUTH, ("x-request-id", given)]
    _, _, answered = await admin(app, "GET", "/admin/v1/overrides", headers=headers)
    assert (answered["x-request-id"] == given) is kept
    assert ((await call(public, "/healthz", headers=headers)).headers["x-request-id"] == given) is (
        kept
    )


async def test_a_bug_in_the_control_plane_is_a_500_not_a_client_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the control plane's own request errors are 400: any other
    exception (a ValueError from a bug included) is a logged 500."""
    service, _, app = make()

    async def broken(name: str, key: str) -> Any:
        raise ValueError("a bug, not the caller's mistake")

    service.control.inspect = broken  # type: ignore[method-assign]
    proto = BodyProto([])
    scope = FakeScope("/admin/v1/clients/default/1.2.3.4", headers=FakeHeaders(AUTH))
    await app(scope, proto)  # type: ignore[arg-type]
    assert proto.answer is not None and proto.answer.status == 500
    assert json.loads(proto.answer.body)["title"] == "Internal Server Error"
    assert any("a bug" in (r.exc_text or "") for r in caplog.records)
    assert service.counters.admin_operations[("inspect", "error")] == 1
