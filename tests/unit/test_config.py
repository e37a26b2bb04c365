"""Every bad config names its source, the field path and the reason."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pingpong.config import ConfigError, load_settings
from pingpong.core.algorithms import Algorithm
from pingpong.core.rates import Rate

DIGEST = "sha256:" + hashlib.sha256(b"secret-key").hexdigest()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env or {}, {})
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limit: fast", "limit: invalid rate 'fast'"),
        ("storage: mysql://x", "storage: unsupported storage URL"),
        ("port: 99999", "port: Input should be less than or equal to 65535"),
        ("on_storage_error: maybe", "on_storage_error: Input should be 'allow', 'deny' or 'local'"),
        ("algorithm: leaky", "algorithm: Input should be 'gcra'"),
        ("trusted_proxies: [not-a-cidr]", "trusted_proxies[0]:"),
        ("storage_timeout: 0", "storage_timeout: Input should be greater than 0"),
        ("limti: 5/second", "limti: unknown setting"),
        ("policies: [{name: a, rate: 5/sec}]", "policies[0].rate: invalid rate '5/sec'"),
        ("policies: [{name: 'bad name'}]", "policies[0].name: use letters"),
        ("policies: [{name: a, key: cookie}]", "policies[0].key: must be client_ip, global"),
        ("policies: [{name: a, burst: 0}]", "policies[0].burst: Input should be greater"),
        ("policies: [{name: a, match: {path: ping}}]", "policies[0].match.path: only /ping"),
        ("policies: [{name: a, match: {path: /admin/*}}]", "would never apply"),
        ("storage: 'redis://127.0.0.1:abc'", "storage: malformed Redis URL: Port could not"),
        ("storage: 'redis://[::1'", "storage: malformed Redis URL: Invalid IPv6 URL"),
        ("storage: 'redis://h:1/zero'", "storage: malformed Redis URL: the database must"),
        ("storage: 'rediss://h:x'", "storage: malformed Redis URL"),
        ("storage: 'redis+cluster://h:x'", "storage: malformed Redis URL"),
        ("storage: 'redis+sentinel://h:26379'", "storage: a Sentinel URL needs the service"),
        ("storage: 'redis+sentinel://h:abc/m'", "the port must be a number"),
        ("storage: 'redis+sentinel://h:1/m/x'", "ends in /<service>[/<db number>]"),
        ("storage: 'memory://x'", "storage: memory storage takes no host"),
        ("burst: 100000000000000000000", "burst: Input should be less than or equal to"),
        ("limit: 1/99999999999999999999s", "limit: invalid rate"),
        ("limit: 10000000000/second", "the count must be at most"),
        ("{limit: 1/day, burst: 100000000}", "limit/burst: 100000000 requests x"),
        ("policies: [{name: a, rate: 1/31536000s, burst: 1000000000}]", "policies[0]: "),
        ("{port: 9000, metrics_port: 9000}", "metrics_port 9000 is the main port"),
        ("policies: [{name: a, match: {methods: [POST]}}]", "policies[0].match.methods[0]"),
        ("policies: [{name: a}, {name: a}]", "names must be unique: a"),
        ("api_keys: {tiers: [{name: g, rate: 1/second, keys: [plain]}]}", "keys: each key is"),
        ("api_keys: {tiers: [{name: g, rate: 1/second, keys: []}]}", "api_keys.tiers[0].keys"),
        ("workers: 2", "workers=2 with memory://"),
    ],
)
def test_bad_values_name_file_field_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert str(tmp_path / "config.yaml") in message or "settings" in message
    assert expected in message


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    assert "line 2" in error_of(tmp_path, "limit: 5/second\n  bad: [\n")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "top level must be a mapping" in error_of(tmp_path, "- a\n- b\n")


@pytest.mark.parametrize("text", ["", "\n", "# nothing yet\n", "---\n", "{}\n"])
def test_an_empty_file_is_refused_never_all_defaults(tmp_path: Path, text: str) -> None:
    """A file caught mid-write reads empty: at start and on reload alike."""
    assert "the config file is empty" in error_of(tmp_path, text)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings("/nonexistent/pingpong.yaml", {}, {})


def test_errors_name_the_env_variable_or_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PINGPONG_LIMIT: limit: invalid rate"):
        load_settings(None, {"PINGPONG_LIMIT": "lots"}, {})
    with pytest.raises(ConfigError, match="--burst: burst: Input should be greater"):
        load_settings(None, {}, {"burst": 0})


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "limit: 1/second\nport: 9000\nburst: 4\n")
    s = load_settings(
        path, {"PINGPONG_LIMIT": "2/second", "PINGPONG_PORT": "9001"}, {"limit": "3/second"}
    )
    assert (s.limit, s.port, s.burst) == (Rate(3, 1), 9001, 4)
    assert load_settings(None, {"PINGPONG_CONFIG": path}, {}).port == 9000


def test_defaults_fill_policies(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
limit: 10/second
burst: 20
algorithm: sliding-window
policies:
  - {{name: per-ip}}
  - {{name: global, key: global, rate: 1000/minute, algorithm: gcra}}
api_keys:
  tiers: [{{name: gold, rate: 100/second, keys: ["{DIGEST}"]}}]
""",
    )
    s = load_settings(path, {}, {})
    per_ip, global_ = s.effective_policies()
    assert (per_ip.limit.rate, per_ip.limit.burst, per_ip.limit.algorithm) == (
        Rate(10, 1), 20, Algorithm.SLIDING_WINDOW,
    )  # fmt: skip
    assert (global_.key, global_.limit.burst, global_.limit.algorithm) == ("global", 1000, "gcra")
    (gold,) = s.tiers()
    assert gold.digests == {hashlib.sha256(b"secret-key").digest()}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingpong", *args], capture_output=True, text=True, timeout=30
    )


def test_check_config_cli(tmp_path: Path) -> None:
    good = write(tmp_path, "policies: [{name: per-ip, rate: 5/10s, burst: 2}]\n")
    ok = run_cli("check-config", good)
    assert ok.returncode == 0
    assert "per-ip: 5/10s burst 2 gcra key=client_ip" in ok.stdout
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text("policies: [{name: per-ip, rate: often}]\n")
    bad = run_cli("check-config", str(bad_path))
    assert bad.returncode == 2
    assert f"{bad_path}: policies[0].rate: invalid rate 'often'" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve", "--limit", "10/fortnight"], "--limit: limit: invalid rate"),
        (["serve", "--storage", "memory://", "--workers", "3"], "workers=3 with memory://"),
        (["serve", "--trusted-proxy", "10.0.0.0/33"], "trusted_proxies[0]"),
        (["serve", "--algorithm", "leaky"], "--algorithm: algorithm: Input should be 'gcra'"),
        (
            ["serve", "--storage", "redis://127.0.0.1:abc"],
            "--storage: storage: malformed Redis URL",
        ),
        (["serve", "--port", "8080", "--metrics-port", "8080"], "is the main port"),
    ],
)
def test_serve_refuses_bad_flags_with_exit_2(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
