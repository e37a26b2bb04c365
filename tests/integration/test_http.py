"""The HTTP contract, over a real socket to a real `pingpong serve`."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pingpong.http.app import ROUTES
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.waiting import wait_until


def test_ping_pong_headers_and_429(pingpong: PingpongFactory) -> None:
    # 3/minute: T = 20 s, so the whole-second values below hold however slowly
    # the (sub-second) requests go through a busy machine.
    server = pingpong("--limit", "3/minute")
    responses = [httpx.get(server.url + "/ping") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    ok = responses[0]
    assert ok.text == "pong"
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert [r.headers["ratelimit"] for r in responses[:3]] == [
        '"default";r=2;t=20', '"default";r=1;t=40', '"default";r=0;t=60',
    ]  # fmt: skip
    limited = responses[3]
    assert limited.headers["content-type"] == "application/problem+json"
    retry = int(limited.headers["retry-after"])
    assert retry == 20  # the next conforming time is one emission interval away
    body = limited.json()
    assert body["status"] == 429
    assert body["policy"] == "default"
    assert body["title"] == "Too Many Requests"
    assert "retry in 20 s" in body["detail"]
    assert body["retry_after"] == 20
    assert limited.headers["ratelimit"] == '"default";r=0;t=60'


def test_head_ping_has_no_body(pingpong: PingpongFactory) -> None:
    server = pingpong()
    response = httpx.head(server.url + "/ping")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "4"


def test_retry_after_is_honest_over_http(pingpong: PingpongFactory) -> None:
    server = pingpong("--limit", "2/second", "--burst", "1")
    assert httpx.get(server.url + "/ping").status_code == 200
    limited = httpx.get(server.url + "/ping")
    assert limited.status_code == 429
    time.sleep(int(limited.headers["retry-after"]))
    assert httpx.get(server.url + "/ping").status_code == 200


def test_other_endpoints_are_never_throttled(pingpong: PingpongFactory) -> None:
    server = pingpong(
        "--limit", "1/hour", env={"PINGPONG_SLOT": "green", "PINGPONG_COMMIT": "abc123"}
    )
    httpx.get(server.url + "/ping")
    for _ in range(5):
        for path in ("/healthz", "/readyz", "/version", "/openapi.json", "/metrics"):
            assert httpx.get(server.url + path).status_code == 200, path
    version = httpx.get(server.url + "/version").json()
    assert version["slot"] == "green" and version["commit"] == "abc123" and version["version"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/ping/extra", 404),
        ("POST", "/ping", 405),
        ("DELETE", "/healthz", 405),
        ("PUT", "/version", 405),
        ("OPTIONS", "/ping", 405),
    ],
)
def test_unknown_paths_and_wrong_methods(
    pingpong_shared: Pingpong, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, pingpong_shared.url + path)
    assert response.status_code == status
    if status == 405:
        assert response.headers["allow"] == "GET, HEAD"


def test_openapi_describes_exactly_the_routes(pingpong_shared: Pingpong) -> None:
    document = httpx.get(pingpong_shared.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == set(ROUTES)
    for path, operations in document["paths"].items():
        assert set(operations) == {"get", "head"}
        response = httpx.get(pingpong_shared.url + path)
        assert str(response.status_code) in operations["get"]["responses"], path


def test_spoofed_forwarded_for_from_untrusted_peer_changes_nothing(
    pingpong: PingpongFactory,
) -> None:
    server = pingpong("--limit", "2/minute")
    codes = [
        httpx.get(server.url + "/ping", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 429, 429]


def test_trusted_proxy_forwarded_for_identifies_clients(pingpong: PingpongFactory) -> None:
    server = pingpong("--limit", "1/minute", "--trusted-proxy", "127.0.0.0/8")

    def get(xff: str) -> int:
        return httpx.get(server.url + "/ping", headers={"X-Forwarded-For": xff}).status_code

    assert get("198.51.100.1") == 200
    assert get("198.51.100.2") == 200
    assert get("198.51.100.1") == 429
    assert get("6.6.6.6, 198.51.100.1") == 429  # prepending a spoof does not escape


def test_api_key_tiers(pingpong: PingpongFactory, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"gold-key-1").hexdigest()
    config = tmp_path / "pingpong.yaml"
    config.write_text(
        f"""
policies:
  - {{name: per-ip, rate: 1/minute}}
api_keys:
  header: X-API-Key
  tiers:
    - {{name: gold, rate: 3/minute, keys: ["sha256:{digest}"]}}
"""
    )
    server = pingpong("--config", str(config))
    gold = [httpx.get(server.url + "/ping", headers={"X-API-Key": "gold-key-1"}) for _ in range(4)]
    assert [r.status_code for r in gold] == [200, 200, 200, 429]
    assert gold[0].headers["ratelimit-policy"] == '"gold";q=3;w=60'
    unknown = [httpx.get(server.url + "/ping", headers={"X-API-Key": "guess"}) for _ in range(2)]
    assert [r.status_code for r in unknown] == [200, 429]  # falls back to per-ip
    assert unknown[0].headers["ratelimit-policy"] == '"per-ip";q=1;w=60'
    metrics = httpx.get(server.url + "/metrics").text
    assert "gold-key-1" not in metrics and digest not in metrics
    assert "gold-key-1" not in server.output()


def test_several_policies_and_shadow(pingpong: PingpongFactory, tmp_path: Path) -> None:
    config = tmp_path / "pingpong.yaml"
    config.write_text(
        """
policies:
  - {name: per-ip, rate: 5/minute}
  - {name: everyone, key: global, rate: 100/minute}
  - {name: trial, rate: 1/minute, shadow: true}
"""
    )
    server = pingpong("--config", str(config))
    responses = [httpx.get(server.url + "/ping") for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert responses[0].headers["ratelimit-policy"] == '"per-ip";q=5;w=60, "everyone";q=100;w=60'
    assert responses[5].headers["ratelimit-policy"] == '"per-ip";q=5;w=60'
    metrics = httpx.get(server.url + "/metrics").text
    assert (
        'pingpong_ratelimit_decisions_total{decision="shadow_limited",policy="trial"} 4.0'
        in metrics
    )
    assert 'pingpong_ratelimit_decisions_total{decision="allowed",policy="everyone"} 5.0' in metrics
    assert 'pingpong_ratelimit_decisions_total{decision="limited",policy="per-ip"} 1.0' in metrics


def test_sighup_reloads_and_refuses_a_bad_config(pingpong: PingpongFactory, tmp_path: Path) -> None:
    config = tmp_path / "pingpong.yaml"
    config.write_text("policies: [{name: first, rate: 1/minute}]\n")
    server = pingpong("--config", str(config))
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"first";q=1;w=60'
    config.write_text("policies: [{name: second, rate: 50/minute}]\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: "second" in httpx.get(server.url + "/ping").headers["ratelimit-policy"])
    config.write_text("policies: [{name: third, rate: whenever}]\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: "config reload refused" in server.output())
    assert "policies[0].rate: invalid rate 'whenever'" in server.output()
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"second";q=50;w=60'


def metric_value(url: str, series: str) -> float:
    line = next(x for x in httpx.get(url + "/metrics").text.splitlines() if x.startswith(series))
    return float(line.split()[-1])


def test_sighup_applies_storage_settings_counts_and_names_what_needs_a_restart(
    pingpong: PingpongFactory, tmp_path: Path
) -> None:
    """Redis is down: allow admits all; a reload to deny answers 503 at once
    (the failure mode applies live), a workers change is named as needing a
    restart, and reloads are counted with the running config's hash."""
    config = tmp_path / "pingpong.yaml"
    down = f"redis://127.0.0.1:{free_port()}/0"
    config.write_text(f"storage: '{down}'\non_storage_error: allow\nlimit: 1/minute\n")
    server = pingpong("--config", str(config))
    assert [httpx.get(server.url + "/ping").status_code for _ in range(3)] == [200] * 3
    info = 'pingpong_config_info{hash="'
    first_hash = httpx.get(server.url + "/metrics").text.split(info)[1][:12]
    config.write_text(f"storage: '{down}'\non_storage_error: deny\nlimit: 1/minute\nworkers: 2\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: httpx.get(server.url + "/ping").status_code == 503)
    assert "reload cannot change workers: restart to apply" in server.output()
    assert metric_value(server.url, 'pingpong_config_reloads_total{result="ok"}') == 1
    assert httpx.get(server.url + "/metrics").text.split(info)[1][:12] != first_hash
    config.write_text("limit: often\n")
    server.signal(signal.SIGHUP)
    wait_until(
        lambda: metric_value(server.url, 'pingpong_config_reloads_total{result="error"}') == 1
    )
    assert httpx.get(server.url + "/ping").status_code == 503  # the old config keeps serving


def test_sigterm_drains_then_exits_cleanly(pingpong: PingpongFactory) -> None:
    server = pingpong(env={"PINGPONG_DRAIN_SECONDS": "1.5"})
    with httpx.Client() as client:
        assert client.get(server.url + "/readyz").status_code == 200
        server.signal(signal.SIGTERM)
        wait_until(lambda: client.get(server.url + "/readyz").status_code == 503, 2)
        draining = client.get(server.url + "/ping")
        assert draining.status_code == 200  # still serving while the LB catches up
        assert draining.headers["connection"] == "close"
    assert server.process is not None and server.process.wait(10) == 0
    assert json.dumps(server.output()).count("Traceback") == 0


def test_fault_injection_for_drills(pingpong: PingpongFactory) -> None:
    server = pingpong(env={"PINGPONG_FAULT_ERROR_RATE": "1", "PINGPONG_FAULT_DELAY": "0.2"})
    started = time.monotonic()
    response = httpx.get(server.url + "/ping")
    assert response.status_code == 500
    assert response.json()["detail"] == "injected fault (drill)"
    assert time.monotonic() - started >= 0.2
    assert httpx.get(server.url + "/healthz").status_code == 200  # only /ping is affected
    assert "FAULT INJECTION ON" in server.output()


def test_a_taken_port_is_refused_not_shared(pingpong: PingpongFactory) -> None:
    """The socket is bound without SO_REUSEPORT: a second instance on the same
    port exits non-zero saying why, and the first keeps serving alone."""
    first = pingpong()
    second = subprocess.run(
        [sys.executable, "-m", "pingpong", "serve", "--port", str(first.port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr
    assert "Traceback" not in second.stderr
    assert httpx.get(first.url + "/ping").text == "pong"


def test_the_ipv6_wildcard_also_listens_on_ipv4(pingpong: PingpongFactory) -> None:
    server = pingpong("--host", "::")
    assert httpx.get(f"http://[::1]:{server.port}/healthz").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200


def test_the_metrics_port_serves_and_a_taken_one_fails(pingpong: PingpongFactory) -> None:
    metrics_port = free_port()
    server = pingpong("--metrics-port", str(metrics_port))
    httpx.get(server.url + "/ping")
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert 'pingpong_http_requests_total{method="GET",route="/ping",status="200"} 1.0' in scraped
    assert "pingpong_config_info{hash=" in scraped
    taken = subprocess.run(
        [sys.executable, "-m", "pingpong", "serve", "--port", str(free_port()),
         "--metrics-port", str(metrics_port)],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert taken.returncode == 1
    assert f"cannot listen for metrics on 127.0.0.1:{metrics_port}" in taken.stderr
    assert "Traceback" not in taken.stderr
