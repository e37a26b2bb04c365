"""deploy/bluegreen/pingpong_rollout/haproxy.cfg: it sheds as the shipped balancer does,
and a server that dies under load costs no request.

Shedding: the rendered config carries the toolkit's per-server maxconn, queue
timeout and 503 file, the values tests/reliability/test_lb_shedding.py holds
the compose config to (HAProxy manual, server "maxconn", "timeout queue",
"errorfiles": docs.haproxy.org/2.6/configuration.html), and ``haproxy -c``
accepts it as ``render-config`` prints it.

The rollout never kills a server that has weight (it drains first), so this
is the safety net for what a rollout cannot plan: a crash. Without `retries`,
`option redispatch` and `retry-on`, the same test loses requests (measured:
32 of 1002 answered 502/503 with those three lines removed).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from pingpong_rollout.load import SteadyLoad
from pingpong_toolkit.commands import run
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.haproxy import ERRORS, QUEUE_TIMEOUT_MS, SERVER_MAXCONN
from pingpong_toolkit.waiting import wait_until
from tests.bluegreen.conftest import LOAD_KEY, STORAGE_TIMEOUT, Stack, rollout_command


def test_the_rendered_config_sheds_as_the_shipped_balancer(tmp_path: Path) -> None:
    rendered = subprocess.run(
        [*rollout_command(), "render-config", "--socket", str(tmp_path / "haproxy.sock")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    config = tmp_path / "haproxy.cfg"
    config.write_text(rendered)
    run(["haproxy", "-c", "-f", str(config)], timeout=30)  # raises on a refused config
    servers = re.findall(r"^\s*default-server .*\bmaxconn (\d+)$", rendered, re.M)
    assert [int(n) for n in servers] == [SERVER_MAXCONN]
    assert re.findall(r"^\s*timeout queue (\d+)ms$", rendered, re.M) == [str(QUEUE_TIMEOUT_MS)]
    assert re.findall(r"^\s*errorfile 503 (\S+)$", rendered, re.M) == [str(ERRORS / "503.http")]
    assert re.findall(r"^\s*errorfiles (\S+)$", rendered, re.M) == ["pingpong-errors"]
    assert re.search(r"^\s*bind 127\.0\.0\.1:8404\n.*prometheus-exporter", rendered, re.M)


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
