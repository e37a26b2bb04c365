"""The settings contract: every documented setting, under every documented
name (file key, PINGPONG_* variable, flag), takes effect.

``PROOFS`` names, for each setting, a test that fails when the setting is not
wired to what it controls. A setting added to Settings or to the README's
config reference without an entry here fails ``test_every_setting_has_a_proof``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pingpong.cli import build_parser
from pingpong.config import ENV_NAMES, FLAGS, Settings, load_settings
from pingpong.core.looplag import LOOP_LAG
from pingpong.core.storage.memory import MemoryStorage
from pingpong.http.app import App
from pingpong.service import Service
from pingpong_toolkit.ports import free_port
from tests import REPO
from tests.unit.rsgi import call

HTTP = "tests.integration.test_http::"
PROOFS = {
    "host": "tests.integration.test_http::test_the_ipv6_wildcard_also_listens_on_ipv4",
    "port": "tests.integration.test_http::test_a_taken_port_is_refused_not_shared",
    "workers": "tests.integration.test_shared_limits::test_workers_share_limits_and_metrics",
    "storage": "tests.integration.test_shared_limits::test_workers_share_limits_and_metrics",
    "storage_timeout": "test_storage_timeout_bounds_each_decision",
    "storage_connections": (
        "tests.reliability.test_cold_start::test_a_cold_replica_opens_its_pool_before_it_serves"
    ),
    "on_storage_error": "test_on_storage_error_decides_while_redis_is_down",
    "circuit_failures": "test_circuit_failures_and_reset_drive_the_breaker",
    "circuit_reset": "test_circuit_failures_and_reset_drive_the_breaker",
    "memory_max_keys": "test_memory_max_keys_bounds_the_table",
    "fleet_min_replicas": (
        "tests.reliability.test_fleet_outage::"
        "test_replicas_that_start_during_an_outage_divide_by_the_floor"
    ),
    "limit": "test_limit_burst_and_algorithm_shape_the_quota",
    "burst": "test_limit_burst_and_algorithm_shape_the_quota",
    "algorithm": "test_limit_burst_and_algorithm_shape_the_quota",
    "trusted_proxies": "test_client_identity_settings",
    "forwarded_header": "test_client_identity_settings",
    "ipv6_prefix": "test_client_identity_settings",
    "drain_seconds": "tests.integration.test_http::test_sigterm_drains_then_exits_cleanly",
    "metrics_port": HTTP + "test_the_metrics_port_serves_and_a_taken_one_fails",
    "admin_port": "tests.integration.test_admin::test_admin_host_binds_the_admin_api_elsewhere",
    "admin_host": "tests.integration.test_admin::test_admin_host_binds_the_admin_api_elsewhere",
    "watch_config": (
        "tests.integration.test_config_watch::test_watch_config_false_ignores_edits_until_a_signal"
    ),
    "log_format": "test_log_format_and_access_log",
    "access_log": "test_log_format_and_access_log",
    "fault_error_rate": "test_fault_injection_settings",
    "fault_delay": "test_fault_injection_settings",
    "max_in_flight": "test_max_in_flight_sheds_the_excess_before_any_work",
    "max_loop_lag": "test_max_loop_lag_sheds_what_queued_in_the_loop",
    "policies": HTTP + "test_several_policies_and_shadow",
    "api_keys": "tests.integration.test_http::test_api_key_tiers",
}

# A valid value per setting, as text (what a variable or a flag carries), and
# what it parses to.
SAMPLES: dict[str, tuple[str, Any]] = {
    "host": ("::1", "::1"),
    "port": ("9123", 9123),
    "workers": ("3", 3),
    "storage": ("redis://127.0.0.1:6390/2", "redis://127.0.0.1:6390/2"),
    "storage_timeout": ("0.25", 0.25),
    "storage_connections": ("32", 32),
    "on_storage_error": ("deny", "deny"),
    "circuit_failures": ("9", 9),
    "circuit_reset": ("3.5", 3.5),
    "memory_max_keys": ("5000", 5000),
    "fleet_min_replicas": ("4", 4),
    "limit": ("7/minute", "7/minute"),
    "burst": ("11", 11),
    "algorithm": ("fixed-window", "fixed-window"),
    "trusted_proxies": ("10.0.0.0/8", "10.0.0.0/8"),
    "forwarded_header": ("forwarded", "forwarded"),
    "ipv6_prefix": ("48", 48),
    "drain_seconds": ("7", 7.0),
    "metrics_port": ("9124", 9124),
    "admin_port": ("9125", 9125),
    "admin_host": ("127.0.0.2", "127.0.0.2"),
    "watch_config": ("false", False),
    "log_format": ("text", "text"),
    "access_log": ("0.5", 0.5),
    "fault_error_rate": ("0.1", 0.1),
    "fault_delay": ("0.2", 0.2),
    "max_in_flight": ("64", 64),
    "max_loop_lag": ("0.05", 0.05),
}


def readme_settings() -> set[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Config file reference", 1)[1].split("```yaml", 1)[1].split("```")[0]
    return set(re.findall(r"^([a-z0-9_]+):", block, re.MULTILINE))


def test_every_setting_has_a_proof() -> None:
    fields = set(Settings.model_fields)
    assert readme_settings() == fields, "the README's config reference and Settings differ"
    assert set(PROOFS) == fields, "every setting needs a test proving it takes effect"
    for name, proof in PROOFS.items():
        module, _, function = proof.rpartition("::")
        found = getattr(importlib.import_module(module or __name__), function, None)
        assert callable(found), f"{name}: no test {proof}"


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_each_variable_and_flag_reaches_its_setting(name: str) -> None:
    text, expected = SAMPLES[name]
    extra = {"storage": "redis://127.0.0.1:6390/2"} if name == "workers" else {}
    via_env = load_settings(None, {ENV_NAMES[name]: text, **_env(extra)}, {})
    flag_value: Any = [text] if name == "trusted_proxies" else text
    args = build_parser().parse_args(["serve", FLAGS[name], *([text])])
    assert getattr(args, name) == flag_value  # argparse hands the flag to its field
    via_flag = load_settings(None, {}, {name: flag_value, **extra})
    for settings in (via_env, via_flag):
        value = getattr(settings, name)
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert shown == str(expected)


def test_the_documented_variable_names() -> None:
    """README, compose and the drill use PINGPONG_TRUSTED_PROXY."""
    assert ENV_NAMES["trusted_proxies"] == "PINGPONG_TRUSTED_PROXY"
    assert FLAGS["trusted_proxies"] == "--trusted-proxy"
    assert "PINGPONG_TRUSTED_PROXY" in (REPO / "README.md").read_text()
    with pytest.raises(Exception, match="trusted_proxies"):
        load_settings(None, {"PINGPONG_TRUSTED_PROXY": "garbage"}, {})


def _env(values: dict[str, str]) -> dict[str, str]:
    return {ENV_NAMES[k]: v for k, v in values.items()}


def service(**values: Any) -> Service:
    return Service(Settings.model_validate(values))


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A port that accepts connections and never answers: a stalled Redis."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


async def test_storage_timeout_bounds_each_decision(silent_redis: str) -> None:
    async def seconds_to_fail(limit: float) -> float:
        svc = service(storage=silent_redis, storage_timeout=limit, on_storage_error="allow")
        started = time.perf_counter()
        await call(App(svc), "/ping")
        assert sum(svc.counters.storage_errors.values()) == 1
        return time.perf_counter() - started

    assert await seconds_to_fail(0.05) < 0.4
    assert await seconds_to_fail(0.6) >= 0.55


@pytest.mark.parametrize(("mode", "statuses"), [
    ("allow", [200, 200, 200, 200]), ("deny", [503, 503, 503, 503]),
    ("local", [200, 200, 429, 429]),
])  # fmt: skip
async def test_on_storage_error_decides_while_redis_is_down(mode: str, statuses: list[int]) -> None:
    app = App(service(storage=f"redis://127.0.0.1:{free_port()}/0", on_storage_error=mode,
                      limit="2/minute"))  # fmt: skip
    assert [(await call(app, "/ping")).status for _ in range(4)] == statuses


async def test_circuit_failures_and_reset_drive_the_breaker() -> None:
    svc = service(storage=f"redis://127.0.0.1:{free_port()}/0", on_storage_error="allow",
                  circuit_failures=3, circuit_reset=0.3)  # fmt: skip
    app = App(svc)
    for _ in range(10):
        await call(app, "/ping")
    assert sum(svc.counters.storage_errors.values()) == 3
    assert svc.counters.circuit_open["redis"] == 1
    await asyncio.sleep(0.35)
    await call(app, "/ping")  # the half-open probe
    assert sum(svc.counters.storage_errors.values()) == 4


async def test_memory_max_keys_bounds_the_table() -> None:
    svc = service(memory_max_keys=1000)
    app = App(svc)
    for i in range(3000):
        await call(app, "/ping", client=f"10.0.{i // 250}.{i % 250}:1")
    assert isinstance(svc.storage, MemoryStorage)
    assert len(svc.storage) <= 1000
    assert svc.storage.rotations >= 5


@pytest.mark.parametrize(("values", "policy"), [
    ({"limit": "7/minute"}, '"default";q=7;w=60'),
    ({"limit": "7/minute", "burst": 14}, '"default";q=14;w=120'),
    ({"limit": "7/minute", "algorithm": "fixed-window", "burst": 14}, '"default";q=7;w=60'),
])  # fmt: skip
async def test_limit_burst_and_algorithm_shape_the_quota(
    values: dict[str, Any], policy: str
) -> None:
    app = App(service(**values))
    answers = [await call(app, "/ping") for _ in range(20)]
    assert answers[0].headers["ratelimit-policy"] == policy
    quota = int(policy.split("q=")[1].split(";")[0])
    assert sum(a.status == 200 for a in answers) == quota


async def test_client_identity_settings() -> None:
    async def remaining(app: App, client: str, headers: list[tuple[str, str]]) -> str:
        answer = await call(app, "/ping", headers=headers, client=client)
        return answer.headers["ratelimit"]

    xff = [("x-forwarded-for", "203.0.113.9")]
    plain = App(service(limit="5/minute"))
    await remaining(plain, "10.1.1.1:5", xff)
    assert "r=3" in await remaining(plain, "10.1.1.1:5", xff)  # not trusted: one client
    trusted = App(service(limit="5/minute", trusted_proxies=["10.0.0.0/8"]))
    await remaining(trusted, "10.1.1.1:5", xff)
    assert "r=4" in await remaining(trusted, "10.1.1.1:5", [("x-forwarded-for", "203.0.113.10")])
    rfc = App(service(limit="5/minute", trusted_proxies=["10.0.0.0/8"],
                      forwarded_header="forwarded"))  # fmt: skip
    await remaining(rfc, "10.1.1.1:5", [("forwarded", "for=203.0.113.9")])
    assert "r=4" in await remaining(rfc, "10.1.1.1:5", [("forwarded", "for=203.0.113.10")])
    mapped = App(service(limit="5/minute", trusted_proxies=["::ffff:10.0.0.0/104"]))
    await remaining(mapped, "10.1.1.1:5", xff)
    assert "r=4" in await remaining(mapped, "10.1.1.1:5", [("x-forwarded-for", "203.0.113.10")])
    for prefix, shared in ((64, True), (128, False)):
        app = App(service(limit="5/minute", ipv6_prefix=prefix))
        await remaining(app, "[2001:db8::1]:5", [])
        after = await remaining(app, "[2001:db8::2]:5", [])
        assert ("r=3" in after) is shared


def test_log_format_and_access_log(pingpong: Any, tmp_path: Path) -> None:
    import httpx

    text = pingpong("--log-format", "text", "--access-log", "1")
    httpx.get(text.url + "/ping")
    json_server = pingpong("--access-log", "0")
    httpx.get(json_server.url + "/ping")
    time.sleep(0.2)
    assert "INFO pingpong.access: GET /ping 200" in text.output()
    lines = [json.loads(line) for line in json_server.output().splitlines() if line.startswith("{")]
    assert lines and all("level" in line for line in lines)
    assert not [line for line in lines if line.get("logger") == "pingpong.access"]


async def test_fault_injection_settings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        errors = App(service(fault_error_rate=1.0))
    assert "FAULT INJECTION ON" in caplog.text
    assert (await call(errors, "/ping")).status == 500
    slow = App(service(fault_delay=0.3))
    started = time.perf_counter()
    assert (await call(slow, "/ping")).status == 200
    assert time.perf_counter() - started >= 0.3


async def test_max_in_flight_sheds_the_excess_before_any_work() -> None:
    """Two /ping in flight at most (each held 0.2 s by the drill delay): of
    six at once, four are answered 503 at once, counted, with Retry-After."""
    app = App(service(max_in_flight=2, fault_delay=0.2, limit="1000/second"))

    async def timed() -> tuple[int, float, dict[str, str]]:
        started = time.perf_counter()
        answer = await call(app, "/ping")
        return answer.status, time.perf_counter() - started, dict(answer.headers)

    answers = await asyncio.gather(*(timed() for _ in range(6)))
    assert sorted(status for status, _, _ in answers) == [200, 200, 503, 503, 503, 503]
    shed = [(elapsed, headers) for status, elapsed, headers in answers if status == 503]
    assert all(elapsed < 0.1 and headers["retry-after"] == "1" for elapsed, headers in shed)
    assert app.counters.shed == 4
    assert app.counters.requests[("GET", "/ping", 503)] == 4
    assert (await call(app, "/healthz")).status == 200  # probes are never shed


async def test_max_loop_lag_sheds_what_queued_in_the_loop() -> None:
    """Six /ping queued behind the second of two 0.1 s blocks of the event
    loop (a lag that stands, as under overload: the queue the in-flight count
    cannot see): over max_loop_lag they are all answered 503 and counted; with
    a bound above the lag all six are served. One block alone sheds nothing."""
    LOOP_LAG.ensure_started()

    async def behind(app: App, blocks: int) -> list[int]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.02)  # past a tick: the block makes the next one late
        for _ in range(blocks - 1):
            loop.call_soon(time.sleep, 0.1)
            await asyncio.sleep(0.001)  # the late tick runs
        loop.call_soon(time.sleep, 0.1)
        answers = await asyncio.gather(*(call(app, "/ping") for _ in range(6)))
        return sorted(answer.status for answer in answers)

    strict = App(service(max_loop_lag=0.05, limit="1000/second"))
    assert await behind(strict, blocks=2) == [503] * 6
    assert strict.counters.shed == 6
    assert await behind(strict, blocks=1) == [200] * 6  # one pause: no standing queue
    lenient = App(service(max_loop_lag=1.0, limit="1000/second"))
    assert await behind(lenient, blocks=2) == [200] * 6
    assert lenient.counters.shed == 0
