"""Load shedding in front of the replica's queue: HAProxy's per-server maxconn.

A replica cannot refuse fast what waits in its own queue (granian's hand-off,
the event loop) before the app runs. HAProxy can: the HAProxy configuration
manual (docs.haproxy.org/2.6/configuration.html, server option "maxconn")
says that in HTTP mode maxconn "limits the number of concurrent requests" sent
to a server and that the excess is "queued, waiting for a slot to be
released"; "timeout queue" bounds that wait: "If the timeout is reached, it is
considered that the request will almost never be served, so it is dropped and
a 503 error is returned to the client" (and "errorfiles", section 4.2, with an
"http-errors" section, 3.8, chooses that 503's bytes). The shipped config
(deploy/compose/haproxy/haproxy.cfg) and the toolkit's ``balancer_config``
(what tests and bench/overload.py run) carry the same bound, queue timeout and
503 file; the file is the app's own shed answer.
"""

from __future__ import annotations

import email.parser
import json
import re
from pathlib import Path

import httpx

from pingpong.config import Settings
from pingpong.http.app import SHED
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.haproxy import ERRORS, QUEUE_TIMEOUT_MS, SERVER_MAXCONN, Balancer
from pingpong_toolkit.waiting import wait_until

from .helpers import Background, Pin, metric, report

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "compose" / "haproxy" / "haproxy.cfg"
DELAY = 0.2  # seconds every /ping takes (fault_delay): the replica is the bottleneck
MAXCONN = 4  # a small bound, so a few dozen connections overload it
CONNECTIONS = 32
SECONDS = 3.0


def test_the_shipped_config_sheds_with_the_apps_bound() -> None:
    """maxconn per server is half the app's max_in_flight (one worker a replica
    in compose: the mean wait of half the SLO), the queue waits QUEUE_TIMEOUT_MS,
    and the 503 is errors/503.http: the same three in the toolkit's config, so
    tests and bench measure this one."""
    config = SHIPPED.read_text()
    servers = re.findall(r"^\s*default-server .*\bmaxconn (\d+)", config, re.M)
    assert [int(n) for n in servers] == [SERVER_MAXCONN] == [Settings().max_in_flight // 2]
    assert re.findall(r"^\s*timeout queue (\d+)ms$", config, re.M) == [str(QUEUE_TIMEOUT_MS)]
    errorfile = re.search(r"^\s*errorfile 503 (\S+)$", config, re.M)
    assert errorfile and (SHIPPED.parent / errorfile.group(1)) == ERRORS / "503.http"
    assert re.search(r"^\s*errorfiles pingpong-errors$", config, re.M)


def test_the_balancers_503_is_the_apps_shed_answer() -> None:
    status, headers, body = SHED
    head, _, payload = (ERRORS / "503.http").read_bytes().partition(b"\r\n\r\n")
    status_line, _, fields = head.decode().partition("\r\n")
    parsed = email.parser.HeaderParser().parsestr(fields)
    assert status_line == f"HTTP/1.1 {status} Service Unavailable"
    for name, value in headers:
        assert parsed[name] == value, name
    assert int(parsed["content-length"]) == len(payload)
    assert json.loads(payload) == json.loads(body)


def test_excess_requests_get_the_balancers_503_without_reaching_the_replica(
    pingpong: PingpongFactory, pin: Pin, tmp_path: Path
) -> None:
    """32 connections against a replica HAProxy lets hold 4 requests at once,
    each taking 0.2 s: it admits what 4 slots serve in the run, no more, and
    every other request is HAProxy's 503 (counted in its metrics), answered
    long before a slot would have freed. The app sees only what it admits."""
    server = pingpong("--limit", "100000/second", env={"PINGPONG_FAULT_DELAY": str(DELAY)})
    assert server.process is not None
    pin(server.process.pid)
    balancer = Balancer.start(tmp_path / "haproxy", {"a": server.port}, maxconn=MAXCONN)
    try:
        with Background([balancer.url], SECONDS, CONNECTIONS) as load:
            wait_until(lambda: any(s.status == 503 for s in load.samples), SECONDS)
            seen = refused_answer(balancer.url)
            samples = load.join(SECONDS + 10)
        counted = balancer.shed() - 1  # and the one seen here
        logged = len(balancer.shed_times()) - 1
        after = httpx.get(balancer.url + "/ping")  # the load gone: served again
    finally:
        balancer.stop()
    admitted = [s for s in samples if s.status == 200]
    refused = [s for s in samples if s.status == 503]
    span = max(s.end for s in samples) - min(s.start for s in samples)
    bound = MAXCONN * (int(span / DELAY) + 1)  # 4 slots, each busy DELAY a request
    report(
        "lb_shedding",
        answers=len(samples),
        admitted=len(admitted),
        bound=bound,
        refused=len(refused),
        counted_by_haproxy=counted,
        slowest_503_ms=round(max(s.latency for s in refused) * 1000, 1) if refused else None,
    )
    assert {s.status for s in samples} == {200, 503}
    status, headers, body = SHED
    assert seen.status_code == status
    assert all(seen.headers[name] == value for name, value in headers), seen.headers
    assert seen.content == body
    assert len(admitted) <= bound, (len(admitted), bound)
    assert len(admitted) >= 0.7 * bound  # the slots were used: the replica was the limit
    assert counted == len(refused)  # HAProxy's Prometheus metrics count each one
    assert logged == len(refused)  # and its log has each, as a queue timeout (sQ)
    # Refused while queued (at most QUEUE_TIMEOUT_MS), never after waiting for a slot.
    assert all(s.latency < DELAY / 2 for s in refused), max(s.latency for s in refused)
    # The replica served exactly what HAProxy admitted, and shed nothing itself.
    assert metric(server.url, "pingpong_http_requests_shed_total") == 0
    served = metric(server.url, 'pingpong_http_requests_total{method="GET",route="/ping"')
    assert served == len(admitted) + 1
    assert after.status_code == 200
    assert "server" not in after.headers and "server" not in seen.headers  # no software named


def refused_answer(url: str) -> httpx.Response:
    """A 503 the balancer answers while the load holds every slot."""
    with httpx.Client(timeout=5) as client:
        for _ in range(100):
            answer = client.get(url + "/ping")
            if answer.status_code == 503:
                return answer
    raise AssertionError("no 503 in 100 requests under load")
