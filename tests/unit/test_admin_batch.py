"""``POST /admin/v1/overrides``: a batch of overrides, all or none. An item
refused (named by its index) or a batch past the bound stores nothing; a
stored batch is one audit line and one announcement per override, as many
PUTs would be."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest

from pingpong.core.overrides import MAX_OVERRIDES
from pingpong.http.admin_auth import READ, Token, Tokens
from pingpong.service.override_request import MAX_BATCH
from tests.unit.test_admin import TOKEN, admin, make


def item(i: int, **fields: Any) -> dict[str, Any]:
    return {"policy": "default", "key": f"10.0.0.{i}", "rate": "100/minute", "expires_in": 60,
            **fields}  # fmt: skip


async def test_a_batch_is_stored_audited_and_announced_per_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, _, app = make()
    caplog.set_level(logging.INFO, "pingpong.audit")
    batch = [item(i, burst=10 + i, reason=f"r{i}") for i in range(3)]
    status, answer, _ = await admin(app, "POST", "/admin/v1/overrides", {"overrides": batch})
    assert status == 200, answer
    stored = [
        (o["override"]["key"], o["override"]["burst"], o["previous"]) for o in answer["overrides"]
    ]
    assert stored == [("10.0.0.0", 10, None), ("10.0.0.1", 11, None), ("10.0.0.2", 12, None)]
    assert sorted(service.limiter.overrides) == [f"default:10.0.0.{i}" for i in range(3)]
    lines = [r for r in caplog.records if r.name == "pingpong.audit"]
    assert [(r.operation, r.key, r.token) for r in lines] == [  # type: ignore[attr-defined]
        ("override_put", f"10.0.0.{i}", "ops") for i in range(3)
    ]
    changes = await service.control.admin_store.changes(0)
    assert changes is not None and sorted(changes.keys) == sorted(service.limiter.overrides)
    # Again: each answer names the override it replaced.
    status, again, _ = await admin(app, "POST", "/admin/v1/overrides", {"overrides": batch[:1]})
    assert status == 200 and again["overrides"][0]["previous"]["burst"] == 10
    assert service.counters.admin_operations[("overrides_put", "ok")] == 2


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"rate": "10/fortnight"}, "overrides.1.rate"),
        ({"policy": "nope"}, "overrides[1]: no policy 'nope'"),
        ({"key": "not a key"}, "overrides[1]: a client key is"),
        ({"key": "10.0.0.0"}, "overrides[1]: default:10.0.0.0 is named twice"),
        ({"expires_in": 0}, "overrides.1.expires_in"),
        ({"reason": "\x1b[2J"}, "overrides.1.reason"),
        ({"admin": True}, "overrides.1.admin"),
    ],
)
async def test_one_bad_item_refuses_the_whole_batch(bad: dict[str, Any], named: str) -> None:
    service, _, app = make()
    batch = [item(0), item(1, **bad), item(2)]
    status, problem, _ = await admin(app, "POST", "/admin/v1/overrides", {"overrides": batch})
    assert status == 422 and named in problem["detail"], problem
    assert service.limiter.overrides == {}
    assert (await service.control.admin_store.overrides(0.0)) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"overrides": []}, 422),
        ({"overrides": [item(0, key=f"10.0.{i // 250}.{i % 250}") for i in range(MAX_BATCH + 1)]},
         422),
        ({"overrides": {"policy": "default"}}, 422),
        ({}, 422),
    ],
)  # fmt: skip
async def test_a_batch_holds_1_to_max_batch_items(body: dict[str, Any], status: int) -> None:
    service, _, app = make()
    assert (await admin(app, "POST", "/admin/v1/overrides", body))[0] == status
    assert service.limiter.overrides == {}


async def test_a_batch_past_the_bound_stores_nothing() -> None:
    service, _, app = make()
    store = service.control.admin_store
    for start in range(0, MAX_OVERRIDES - 1, MAX_BATCH):
        chunk = [item(0, key=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
                 for i in range(start, min(start + MAX_BATCH, MAX_OVERRIDES - 1))]  # fmt: skip
        assert (await admin(app, "POST", "/admin/v1/overrides", {"overrides": chunk}))[0] == 200
    two_new = [item(0, key="192.0.2.1"), item(0, key="192.0.2.2")]
    status, problem, _ = await admin(app, "POST", "/admin/v1/overrides", {"overrides": two_new})
    assert status == 409, problem
    assert len(await store.overrides(0.0)) == MAX_OVERRIDES - 1
    assert "default:192.0.2.1" not in service.limiter.overrides
    # One new and one already stored fit exactly.
    fits = [item(0, key="192.0.2.1"), item(0, key="10.0.0.0")]
    assert (await admin(app, "POST", "/admin/v1/overrides", {"overrides": fits}))[0] == 200
    assert len(await store.overrides(0.0)) == MAX_OVERRIDES


async def test_a_read_token_may_not_post_a_batch() -> None:
    service, _, app = make()
    app.tokens = Tokens([Token("viewer", hashlib.sha256(TOKEN.encode()).digest(), READ)])
    status, problem, _ = await admin(app, "POST", "/admin/v1/overrides", {"overrides": [item(0)]})
    assert status == 403 and "write" in problem["detail"]
    assert service.limiter.overrides == {}
