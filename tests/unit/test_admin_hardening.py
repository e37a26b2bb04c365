"""The admin API holds against a curious caller: Unicode digits, query
parameters that would override the path, terminal escapes in a reason, token
guessers (logged, rate-limited), bodies that never arrive, and text-format
audit lines that say what changed."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pingpong.logs import TEXT_FORMAT, TextFormatter
from tests.unit.rsgi import FakeHeaders, FakeScope
from tests.unit.test_admin import AUTH, BodyProto, admin, make


@pytest.mark.parametrize(
    "query", ["window=%C2%B2", "limit=%E2%91%A0", "window=%D9%A3", "limit=%EF%BC%95", "window=+5"]
)
async def test_unicode_digits_in_top_are_a_400(query: str) -> None:
    """'²', '①', Arabic-Indic and full-width digits pass str.isdigit()."""
    _, _, app = make()
    status, problem, _ = await admin(app, "GET", f"/admin/v1/top?{query}")
    assert status == 400, problem
    assert "whole number" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/v1/clients/nope/1.2.3.4?policy=default",
        "/admin/v1/clients/default/1.2.3.4?policy=nope",
        "/admin/v1/overrides/default/1.2.3.4?policy=nope",
        "/admin/v1/overrides/default/1.2.3.4?ip=1.2.3.4",
        "/admin/v1/overrides?policy=default",
        "/admin/v1/top?ip=1.2.3.4",
        "/admin/v1/clients/default?ip=1.2.3.4&key=9.9.9.9",
    ],
)
async def test_a_query_never_overrides_the_path(path: str) -> None:
    """A proxy's ACL on /clients/<policy>/ must hold: each endpoint takes only
    its own query parameters, and never one the path names."""
    _, _, app = make()
    method = "DELETE" if "/overrides/" in path else "GET"
    status, problem, _ = await admin(app, method, path)
    assert status == 400, problem
    assert "query parameter" in problem["detail"]


@pytest.mark.parametrize(
    "reason", ["\x1b[2J\x1b[31mpwned", "bell\x07", "new\nline", "rtl\u202eevil", "nul\x00"]
)
async def test_a_reason_with_control_characters_is_refused(reason: str) -> None:
    service, _, app = make()
    body = {"rate": "10/minute", "expires_in": 60, "reason": reason}
    status, problem, _ = await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", body)
    assert status == 422, problem
    assert problem["errors"][0]["field"] == "reason"
    assert service.limiter.overrides == {}


async def test_a_reason_in_any_script_is_kept() -> None:
    _, _, app = make()
    body = {
        "rate": "10/minute",
        "expires_in": 60,
        "reason": "Ticket 42 \u2013 client: Zürich, 東京",
    }
    status, put, _ = await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", body)
    assert status == 200 and put["override"]["reason"] == body["reason"]


async def test_unauthorized_requests_are_logged_with_their_source_and_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, _, app = make()
    headers = [("authorization", "Bearer guess-0123456789abcdef")]
    with caplog.at_level(logging.WARNING, "pingpong.admin"):
        for _ in range(200):
            scope = FakeScope("/admin/v1/overrides", client="198.51.100.23:4711",
                              headers=FakeHeaders(headers))  # fmt: skip
            await app(scope, BodyProto([]))  # type: ignore[arg-type]
    lines = [r for r in caplog.records if r.name == "pingpong.admin"]
    assert 1 <= len(lines) <= 5  # a flood of guesses writes a few lines, not 200
    assert all("198.51.100.23" in r.getMessage() for r in lines)
    assert lines[0].__dict__["peer"] == "198.51.100.23"
    assert "guess" not in caplog.text  # never the presented token


class StalledProto(BodyProto):
    """A client that sends its headers, then nothing."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        async def never() -> AsyncIterator[bytes]:
            await asyncio.sleep(3600)
            yield b""

        return never()


async def test_a_body_that_never_arrives_is_cut_with_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pingpong.http.rsgi.BODY_TIMEOUT_SECONDS", 0.2)
    service, _, app = make()
    proto = StalledProto([])
    headers = FakeHeaders([*AUTH, ("content-length", "60")])
    scope = FakeScope("/admin/v1/overrides/default/1.2.3.4", "PUT", headers=headers)
    await asyncio.wait_for(app(scope, proto), 5)  # type: ignore[arg-type]
    assert proto.answer is not None and proto.answer.status == 408
    assert service.limiter.overrides == {}
    assert service.counters.admin_operations[("override_put", "invalid")] == 1


async def test_text_audit_lines_carry_old_and_new_values_and_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, _, app = make()
    caplog.set_level(logging.INFO, "pingpong.audit")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter(TEXT_FORMAT))
    audit = logging.getLogger("pingpong.audit")
    audit.addHandler(handler)
    try:
        headers = [*AUTH, ("x-request-id", "change-77")]
        for burst in (20, 30):
            body: dict[str, Any] = {"rate": "10/minute", "burst": burst, "expires_in": 60}
            await admin(app, "PUT", "/admin/v1/overrides/default/1.2.3.4", body, headers)
    finally:
        audit.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert "admin override_put default:1.2.3.4 by ops" in second
    assert "request_id=" in second and "change-77" in second
    assert '"burst":20' in second.partition(" old=")[2].partition(" new=")[0]
    assert '"burst":30' in second.partition(" new=")[2]
    assert "old=null" in first
