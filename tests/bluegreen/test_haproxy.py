"""deploy/bluegreen/pingpong_rollout/haproxy.cfg: a server that dies under load costs no request.

The rollout never kills a server that has weight (it drains first), so this
is the safety net for what a rollout cannot plan: a crash. Without `retries`,
`option redispatch` and `retry-on`, the same test loses requests (measured:
32 of 1002 answered 502/503 with those three lines removed).
"""

from __future__ import annotations

import signal
import time

from pingpong_rollout.load import SteadyLoad
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.waiting import wait_until
from tests.bluegreen.conftest import LOAD_KEY, STORAGE_TIMEOUT, Stack


def test_a_server_crash_under_load_costs_no_request(
    stack: Stack, pingpong: PingpongFactory
) -> None:
    other = pingpong(
        "--config", str(stack.config), "--storage", stack.redis.url,
        env={"PINGPONG_SLOT": "green", "PINGPONG_STORAGE_TIMEOUT": STORAGE_TIMEOUT},
    )  # fmt: skip
    api = stack.haproxy.api
    api.set_addr("green", "127.0.0.1", other.port)
    api.set_weights({"blue": 50, "green": 50})
    wait_until(lambda: api.server("green").up, 10)

    load = SteadyLoad(
        stack.frontend + "/ping", 200, max_seconds=10, max_requests=2000,
        headers={"X-API-Key": LOAD_KEY},
    )  # fmt: skip
    with load:
        time.sleep(1.5)
        other.signal(signal.SIGKILL)  # no drain, no goodbye: a crash
        time.sleep(2.5)
    summary = load.summary

    assert summary.failures() == [], summary.as_dict()
    assert summary.by_slot().get("green", 0) > 100  # it did take traffic before dying
    assert not api.server("green").up  # and HAProxy's checks noticed
