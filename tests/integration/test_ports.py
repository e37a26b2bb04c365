"""What each port shows, over real sockets: with metrics_port set, /metrics
and /version are served only there and the public port keeps /ping,
/healthz, /readyz and /openapi.json; no listener names its server software."""

from __future__ import annotations

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until

PUBLIC = {"/ping", "/healthz", "/readyz", "/openapi.json"}
INTERNAL = {"/metrics", "/version"}
ENV = {"PINGPONG_COMMIT": "abc123", "PINGPONG_SLOT": "blue"}


@pytest.mark.parametrize("workers", [1, 2])
def test_with_a_metrics_port_the_public_port_shows_only_the_service(
    pingpong: PingpongFactory, redis_server: RedisServer, workers: int
) -> None:
    port = free_port()
    storage = "memory://" if workers == 1 else redis_server.url
    server = pingpong("--metrics-port", str(port), "--workers", str(workers),
                      "--storage", storage, env=ENV)  # fmt: skip
    internal = f"http://127.0.0.1:{port}"
    for path in PUBLIC:
        assert httpx.get(server.url + path).status_code == 200, path
    for path in INTERNAL:
        assert httpx.get(server.url + path).status_code == 404, path
    document = httpx.get(server.url + "/openapi.json").json()
    assert set(document["paths"]) == PUBLIC
    wait_until(lambda: httpx.get(internal + "/version").status_code == 200, timeout=5)
    version = httpx.get(internal + "/version").json()
    assert (version["commit"], version["slot"]) == ("abc123", "blue") and version["version"]
    assert httpx.get(internal + "/metrics").headers["content-type"].startswith("text/plain")
    ping = 'pingpong_http_requests_total{method="GET",route="/ping",status="200"}'
    # With --workers the counts arrive as each worker publishes (once a second).
    wait_until(lambda: ping in httpx.get(internal + "/metrics").text, timeout=5)
    for path in ("/ping", "/healthz", "/", "/metrics/../ping"):
        assert httpx.get(internal + path).status_code == 404, path


def test_without_a_metrics_port_everything_is_on_one_port(pingpong: PingpongFactory) -> None:
    server = pingpong(env=ENV)
    for path in PUBLIC | INTERNAL:
        assert httpx.get(server.url + path).status_code == 200, path
    assert set(httpx.get(server.url + "/openapi.json").json()["paths"]) == PUBLIC | INTERNAL


def test_no_listener_names_its_server_software(pingpong: PingpongFactory) -> None:
    """granian 2.8 has no option to drop its ``server: granian``; it adds it
    only when the app sets none (``headers.entry(SERVER).or_insert(HV_SERVER)``
    in headers_from_py, https://github.com/emmett-framework/granian/blob/master/src/conversion.rs),
    so every answer sets an empty one."""
    metrics, admin = free_port(), free_port()
    server = pingpong("--metrics-port", str(metrics), "--admin-port", str(admin),
                      env={"PINGPONG_ADMIN_TOKEN": "ports-token-0123456789"})  # fmt: skip
    answers = [httpx.get(server.url + p) for p in (*PUBLIC, "/nope", "/metrics")]
    answers += [httpx.get(f"http://127.0.0.1:{metrics}{p}") for p in (*INTERNAL, "/nope")]
    answers += [httpx.get(f"http://127.0.0.1:{admin}{p}") for p in ("/openapi.json", "/nope")]
    for answer in answers:
        assert answer.headers.get("server", "") == "", (answer.url, answer.headers)
