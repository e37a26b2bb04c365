"""Metrics and logs, checked against the traffic actually sent."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.pingpong import Pingpong
from tests.loadgen import hammer


def samples(url: str) -> Samples:
    text = httpx.get(url + "/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_counters_and_histograms_match_the_traffic(pingpong: PingpongFactory) -> None:
    server = pingpong("--limit", "50/minute", env={"PINGPONG_SLOT": "blue"})
    codes = asyncio.run(hammer([server.url], 120))
    httpx.get(server.url + "/no/such/path")
    httpx.post(server.url + "/ping")
    found = samples(server.url)
    ok, limited = codes.count(200), codes.count(429)
    assert (ok, limited) == (50, 70)
    total = "pingpong_http_requests_total"
    assert value(found, total, method="GET", route="/ping", status="200") == ok
    assert value(found, total, method="GET", route="/ping", status="429") == limited
    assert value(found, total, method="GET", route="unmatched", status="404") == 1
    assert value(found, total, method="POST", route="/ping", status="405") == 1
    hist = "pingpong_http_request_duration_seconds"
    assert value(found, hist + "_count", method="GET", route="/ping") == 120
    assert value(found, hist + "_bucket", method="GET", route="/ping", le="+Inf") == 120
    assert value(found, hist + "_bucket", method="GET", route="/ping", le="0.1") <= 120
    decisions = "pingpong_ratelimit_decisions_total"
    assert value(found, decisions, policy="default", decision="allowed") == 50
    assert value(found, decisions, policy="default", decision="limited") == 70
    build = [k for k in found if k[0] == "pingpong_build_info"]
    assert len(build) == 1
    assert dict(build[0][1])["slot"] == "blue"
    assert value(found, "pingpong_http_requests_in_flight") == 1  # the scrape itself
    labels = {label for _, ls in found for label, _ in ls}
    assert not labels & {"client", "ip", "key", "api_key", "path"}  # no per-client labels


def test_request_id_is_echoed_or_generated(pingpong_shared: Pingpong) -> None:
    given = httpx.get(pingpong_shared.url + "/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    first = httpx.get(pingpong_shared.url + "/ping").headers["x-request-id"]
    second = httpx.get(pingpong_shared.url + "/ping").headers["x-request-id"]
    assert first != second
    assert len(first) > 8
    too_long = httpx.get(pingpong_shared.url + "/ping", headers={"X-Request-ID": "x" * 500})
    assert too_long.headers["x-request-id"] != "x" * 500


def test_json_access_log_sampled_and_errors_always(pingpong: PingpongFactory) -> None:
    quiet = pingpong(env={"PINGPONG_FAULT_ERROR_RATE": "1"})
    httpx.get(quiet.url + "/healthz")
    httpx.get(quiet.url + "/ping", headers={"X-Request-ID": "drill-1"})
    lines = [json.loads(x) for x in quiet.output().splitlines() if x.startswith("{")]
    access = [x for x in lines if x["logger"] == "pingpong.access"]
    assert len(access) == 1  # the 500 only: access logging is off by default
    assert access[0]["status"] == 500
    assert access[0]["request_id"] == "drill-1"
    assert access[0]["level"] == "ERROR"

    loud = pingpong("--access-log", "1")
    httpx.get(loud.url + "/ping", headers={"X-API-Key": "secret-never-logged"})
    entries = [json.loads(x) for x in loud.output().splitlines() if x.startswith("{")]
    (entry,) = [x for x in entries if x["logger"] == "pingpong.access" and x["route"] == "/ping"]
    assert entry["route"] == "/ping"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert "secret-never-logged" not in loud.output()
