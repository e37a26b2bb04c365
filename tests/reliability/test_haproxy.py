"""Replicas behind a real HAProxy (Debian's), sharing one Redis.

HAProxy checks ``GET /readyz`` every 500 ms (``fall 1 rise 2``) and retries a
failed connection or an empty response up to 3 times, on another server
(``option redispatch``), as docs/reliability.md recommends for any balancer.

- SIGTERM under steady load: /readyz turns 503 at once, HAProxy takes the
  replica out while it still serves, requests in flight when it stops complete,
  it exits 0 well within its grace period, and not one request fails.
- SIGKILL under load: requests fail, if at all, only within HAProxy's detection
  window, and the surviving replicas keep the shared limit exact (admitted
  requests against the GCRA guarantee ``burst + floor(L / T)``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.haproxy import Balancer
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until

from .helpers import CONNECTION_ERROR, Background, Pin, report, timed_load

CHECK_INTER = 0.5
StartBalancer = Callable[[dict[str, int]], Balancer]


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[StartBalancer]:
    """The toolkit's balancer (the shipped config's shedding, checks every 0.5 s)."""
    started: list[Balancer] = []

    def start(servers: dict[str, int]) -> Balancer:
        balancer = Balancer.start(tmp_path / f"haproxy-{len(started)}", servers, CHECK_INTER)
        started.append(balancer)
        return balancer

    yield start
    for balancer in started:
        balancer.stop()


def test_sigterm_under_load_loses_nothing(
    pingpong: PingpongFactory, redis_server: RedisServer, haproxy: StartBalancer, pin: Pin
) -> None:
    drain = 2.0
    env = {
        "PINGPONG_DRAIN_SECONDS": str(drain),
        # Every /ping takes 0.2 s, so requests are in flight at every moment.
        "PINGPONG_FAULT_DELAY": "0.2",
    }
    a = pingpong("--storage", redis_server.url, "--limit", "100000/second", env=env)
    b = pingpong("--storage", redis_server.url, "--limit", "100000/second", env=env)
    assert a.process is not None and b.process is not None
    pin(a.process.pid)
    pin(b.process.pid)
    proxy = haproxy({"a": a.port, "b": b.port})

    with Background([proxy.url], 30, 32) as load, httpx.Client(timeout=5) as direct:
        wait_until(lambda: load.served() == {"a", "b"}, 10)  # both replicas under load
        a.signal(signal.SIGTERM)
        sigterm = time.monotonic()
        # The event, not a stopwatch: once the replica logs that it drains,
        # /readyz already answers 503 (the flag flips before the log line).
        wait_until(lambda: "draining for" in a.output(), 5, 0.01)
        assert direct.get(a.url + "/readyz").status_code == 503
        not_ready = time.monotonic() - sigterm
        served_while_draining = direct.get(a.url + "/ping")  # still serving...
        assert served_while_draining.status_code == 200
        assert served_while_draining.headers["connection"] == "close"
        wait_until(lambda: proxy.status()["a"] != "UP", 3, 0.02)
        out_of_rotation = time.monotonic() - sigterm
        # ... and a request still in flight when the drain ends completes.
        time.sleep(max(0.0, sigterm + drain - 0.1 - time.monotonic()))
        in_flight = asyncio.run(timed_load([a.url], 0.01, 1))
        exit_code = a.process.wait(10)
        exited = time.monotonic() - sigterm
        wait_until(lambda: load.served(after=sigterm + 1.5), 10)  # answers after the stop
    samples = load.samples

    assert [s.status for s in in_flight] == [200], in_flight
    assert in_flight[0].end > sigterm + drain  # it was in flight across the stop
    assert exit_code == 0, a.output()[-3000:]
    assert exited < drain + 2, exited  # the grace period in deploy/ is 30 s
    failed = [s for s in samples if s.status != 200]
    assert not failed, failed[:10]
    by_a = [s for s in samples if s.server == "a"]
    after = [s for s in samples if s.start > sigterm + 1.5]
    assert by_a and after and {s.server for s in after} == {"b"}
    last_to_a = max(s.start for s in by_a) - sigterm
    assert last_to_a < drain  # HAProxy stopped sending before the replica stopped
    assert "Traceback" not in a.output()
    report(
        "sigterm_behind_haproxy",
        requests=len(samples),
        failed=len(failed),
        readyz_503_after_s=round(not_ready, 3),
        haproxy_out_of_rotation_after_s=round(out_of_rotation, 3),
        last_request_to_a_after_s=round(last_to_a, 3),
        exited_after_s=round(exited, 3),
        in_flight_at_stop_latency_s=round(in_flight[0].latency, 3),
    )


def test_sigkill_keeps_shared_limits_exact(
    pingpong: PingpongFactory, redis_server: RedisServer, haproxy: StartBalancer, pin: Pin
) -> None:
    rate, burst = 20, 20  # per client and second; T = 50 ms
    clients = [f"198.51.100.{i}" for i in range(1, 5)]
    args = (
        "--storage", redis_server.url, "--limit", f"{rate}/second", "--burst", str(burst),
        "--trusted-proxy", "127.0.0.1/32",
    )  # fmt: skip
    # A generous storage timeout: this test is about exactness, not fallbacks
    # (which let each replica decide alone, as documented).
    env = {"PINGPONG_STORAGE_TIMEOUT": "1"}
    replicas = {name: pingpong(*args, env=env) for name in ("a", "b", "c")}
    for replica in replicas.values():
        assert replica.process is not None
        pin(replica.process.pid)
    proxy = haproxy({name: r.port for name, r in replicas.items()})

    with Background([proxy.url], 30, 16, clients) as load:
        time.sleep(3)
        victim = replicas["a"].process
        assert victim is not None
        victim.kill()
        killed = time.monotonic()
        wait_until(lambda: proxy.status()["a"] != "UP", 3, 0.02)
        detected = time.monotonic() - killed
        time.sleep(3)
    samples = load.samples
    assert victim.wait(5) == -signal.SIGKILL

    failed = [s for s in samples if s.status not in (200, 429)]
    window = CHECK_INTER + 1.0  # one check interval, plus its timeout
    assert all(killed <= s.end <= killed + window for s in failed), failed[:10]
    assert {s.status for s in failed} <= {CONNECTION_ERROR, 502, 503}, failed[:10]
    # retries + redispatch: a refused or cut connection is retried elsewhere.
    assert len(failed) == 0, failed[:10]

    exactness = {}
    for client in clients:
        theirs = sorted((s for s in samples if s.client == client), key=lambda s: s.start)
        admitted = sum(s.status == 200 for s in theirs)
        span = theirs[-1].end - theirs[0].start
        bound = burst + int(span * rate)
        exactness[client] = (admitted, bound)
        assert admitted <= bound, (client, admitted, bound)
        assert admitted >= 0.9 * bound, (client, admitted, bound)  # exact, not just below
    assert {s.server for s in samples if s.start > killed + window} == {"b", "c"}
    report(
        "sigkill_behind_haproxy",
        requests=len(samples),
        failed=len(failed),
        haproxy_detected_after_s=round(detected, 3),
        admitted_vs_bound=exactness,
    )
