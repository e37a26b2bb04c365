"""A real Prometheus scrapes a real pingpong and evaluates the SLO recording rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pingpong_toolkit.commands import require
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.waiting import wait_until
from tests import REPO

RULES = REPO / "deploy/monitoring/prometheus/rules/pingpong-slo.yml"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Yields ``start(target)``: a Prometheus scraping ``target``, its URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    process: Process | None = None

    def start(target: str) -> str:
        nonlocal process
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n"
            f"  - {{job_name: pingpong, static_configs: [{{targets: ['{target}']}}]}}\n"
        )
        process = Process.start(
            "prometheus",
            [require("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/-/ready").status_code == 200, 30)
        return url

    yield start
    if process is not None:
        process.stop(10)


def query(url: str, expr: str) -> float | None:
    result = httpx.get(url + "/api/v1/query", params={"query": expr}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_recording_rules_compute_the_slis_from_real_scrapes(
    pingpong: PingpongFactory, prometheus: Callable[[str], str]
) -> None:
    server = pingpong("--limit", "5/hour", "--trusted-proxy", "127.0.0.0/8")

    def send(client: str, n: int) -> None:
        for _ in range(n):
            httpx.get(server.url + "/ping", headers={"X-Forwarded-For": client})

    send("198.51.100.1", 8)  # both the 200 and the 429 series exist before the first scrape
    url = prometheus(f"127.0.0.1:{server.port}")
    wait_until(lambda: query(url, 'up{job="pingpong"}') == 1, 20)
    wait_until(lambda: query(url, "job:pingpong_ping_requests:rate5m") is not None, 20)
    for client in ("198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"):
        send(client, 8)  # 5 admitted + 3 throttled each: 20 x 200, 12 x 429

    throttled = "job:pingpong_ping_throttled_per_request:ratio_rate5m"
    wait_until(lambda: abs((query(url, throttled) or 0) - 12 / 32) < 0.01, 30)
    assert query(url, "job:pingpong_ping_availability:ratio_rate5m") == 1.0  # 429 is success
    assert query(url, "job:pingpong_ping_errors:rate5m") == 0.0  # zero, not absent
    assert query(url, "job:pingpong_ping_errors_per_request:ratio_rate5m") == 0.0
    latency = query(url, "job:pingpong_ping_latency:ratio_rate5m")
    assert latency is not None
    assert latency >= 0.9  # loopback: /ping is far under the 0.1 s threshold
