"""What the storage hands back is untrusted: an override is read back only if
it is one the admin API could have written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pingpong.core.overrides import Override, check_full_key
from pingpong.core.rates import Rate
from pingpong.core.storage.admin import MemoryAdminStore

GOOD = Override("default", "203.0.113.9", Rate(100, 60), 50, 1_000_060.0, "ticket", "ops", 1e6)


def test_what_the_api_writes_reads_back_the_same() -> None:
    assert Override.from_json(GOOD.to_json()) == GOOD


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expires_at": float("inf")}, "Infinity is not a number"),
        ({"expires_at": float("nan")}, "NaN is not a number"),
        ({"expires_at": 1e6 + 367 * 86400}, "expires_at"),  # longer than the API allows
        ({"expires_at": "1000060"}, "expires_at"),
        ({"created_at": True}, "created_at"),
        ({"burst": 0}, "burst"),
        ({"burst": 1.5}, "burst"),
        ({"burst": True}, "burst"),
        ({"rate": "10/fortnight"}, "rate"),
        ({"rate": 10}, "rate"),
        ({"policy": "no spaces"}, "policy"),
        ({"key": "x" * 129}, "key"),
        ({"reason": "r" * 501}, "reason"),
        ({"reason": "\x1b[2Jcleared"}, "reason"),
        ({"created_by": "someone else"}, "created_by"),
        ({"admin": True}, "admin"),
    ],
)
def test_a_stored_override_out_of_the_api_bounds_is_refused(
    change: dict[str, Any], field: str
) -> None:
    text = json.dumps({**GOOD.to_dict(), **change})  # json writes Infinity and NaN as such
    with pytest.raises(ValueError, match=field):
        Override.from_json(text)


@pytest.mark.parametrize("text", ["garbage", "[]", "null", '{"policy": "default"}', "{" * 10000])
def test_a_stored_value_that_is_no_override_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"JSON|an override is|not a number"):
        Override.from_json(text)


@pytest.mark.parametrize("text", ["garbage-entry", "default", ":1.2.3.4", "default:", "a b:c"])
def test_a_full_key_is_a_policy_and_a_client_key(text: str) -> None:
    with pytest.raises(ValueError, match="policy"):
        check_full_key(text)
    assert check_full_key("default:2001:db8::/64") == "default:2001:db8::/64"


async def test_the_memory_store_lists_a_page_at_a_time_in_key_order() -> None:
    store = MemoryAdminStore()
    for i in (3, 1, 4, 0, 2):
        await store.put_overrides([Override("p", f"10.0.0.{i}", Rate(1, 1), None, 100.0)], 0.0, 10)
    await store.put_overrides([Override("p", "10.0.0.9", Rate(1, 1), None, 5.0)], 0.0, 10)
    seen, cursor, pages = [], "", 0
    while True:
        page = await store.page(cursor, 2, now=10.0)  # 10.0.0.9 has expired
        seen += [o.key for o in page.overrides]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"10.0.0.{i}" for i in range(5)] and pages == 3
