"""Fuzzing: the HTTP surface with schemathesis, the config loader and
``pingpong check-config`` with hypothesis.

schemathesis is a dev dependency (pinned in constraints.txt); a missing one fails
the suite, as any missing tool does."""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pingpong.cli import describe, main
from pingpong.config import ENV_NAMES, ConfigError, Settings, load_settings
from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.waiting import wait_until

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def test_schemathesis_against_the_running_service(pingpong: PingpongFactory) -> None:
    """Every documented operation (GET and HEAD of the six routes), through
    schemathesis' coverage and fuzzing phases, with other methods too: never a
    5xx, and every answer conforms to /openapi.json (status, content type,
    headers, body schema). The operations take no parameters, so ~75 cases
    cover them; --max-examples bounds the run all the same."""
    st_cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st_cli is None:
        pytest.fail("schemathesis is not installed in the venv (constraints.txt pins it)")
    # A low limit, so that 429s (and their documented headers) are exercised too.
    server = pingpong("--limit", "5/second")
    checks = ",".join(
        [
            "not_a_server_error",
            "status_code_conformance",
            "content_type_conformance",
            "response_headers_conformance",
            "response_schema_conformance",
            "unsupported_method",  # 405 with Allow for every other method
        ]
    )
    result = subprocess.run(
        [
            st_cli, "run", server.url + "/openapi.json",
            "--checks", checks,
            "--max-examples", "25",
            "--seed", "7",  # reproducible in CI
            "--request-timeout", "5",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Traceback" not in server.output()


# -- the config loader ------------------------------------------------------------------------

NESTED_KEYS = [
    "name", "match", "path", "methods", "key", "rate", "burst", "algorithm", "shadow",
    "header", "tiers", "keys",
]  # fmt: skip
TOP_KEYS = [*Settings.model_fields, "unknown", "policy"]
TEXTS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "10/minute", "5/10s", "0/second", "1/0s", "99999999999999999999/second",
            "1/99999999999999999999s", "gcra", "sliding-window", "client_ip", "global",
            "header:X-Key", "header:", "GET", "POST", "/ping", "/api/*", "redis://127.0.0.1:1/0",
            "rediss://u:p@h:1/0", "redis+sentinel://h:1", "memory://", "10.0.0.0/8",
            "::1/200", "x-forwarded-for", "forwarded", "sha256:" + "a" * 64, "sha256:zz",
            "local", "deny", "allow", "json", "text", "nan", "inf", "-1", "1e309", "",
        ]
    ),
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(NESTED_KEYS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=20,
)
CONFIGS = st.dictionaries(st.sampled_from(TOP_KEYS), VALUES, max_size=8)
YAMLISH = st.text(
    alphabet=string.printable + "\u00e9\u2028\ufeff\x00\x85", max_size=200
) | st.builds(
    lambda parts: "\n".join(parts),
    st.lists(
        st.sampled_from(
            [
                "policies:", "  - name: a", "    rate: 10/minute", "  - {name: b, key: global}",
                "limit: 5/second", "burst: 0", "workers: 2", "storage: memory://",
                "api_keys:", "  tiers: [{name: t, rate: 1/second, keys: [x]}]", "&a [*a]",
                "? [a, b]\n: c", "!!python/object:os.system", "- x", "a: &x 1\nb: *x",
                "limit: !!binary aGVsbG8=", "%YAML 1.1\n---", "--- !!set {a, b}", "\t- tab",
                "port: 0x1F90", "drain_seconds: .inf", "trusted_proxies: 10.0.0.0/8, ::1",
            ]
        ),
        max_size=8,
    ),
)  # fmt: skip


def load_file(text: str) -> Settings | None:
    """load_settings on a file holding ``text``: Settings, or None on ConfigError."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        try:
            loaded = load_settings(handle.name, env={}, flags={})
        except ConfigError as exc:
            error: ConfigError | None = exc
        else:
            error = None
    if error is not None:
        assert str(error).strip(), "a ConfigError must say what is wrong"
        return None
    # What check-config and the server do with a valid config must work too.
    loaded.effective_policies()
    loaded.tiers()
    describe(loaded, "fuzz.yaml")
    return loaded


@FUZZ
@given(CONFIGS)
def test_config_dicts_load_or_raise_config_error(config: dict[str, Any]) -> None:
    load_file(yaml.safe_dump(config, allow_unicode=True))


@FUZZ
@given(YAMLISH)
def test_config_text_loads_or_raises_config_error(text: str) -> None:
    load_file(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(ENV_NAMES.values())), TEXTS, max_size=6))
def test_environment_loads_or_raises_config_error(values: dict[str, str]) -> None:
    env = dict(values)
    try:
        loaded = load_settings(None, env=env, flags={})
    except ConfigError:
        return
    loaded.effective_policies()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONFIGS | YAMLISH.map(lambda text: {"__text__": text}))
def test_check_config_exits_0_or_2(config: dict[str, Any]) -> None:
    text = config["__text__"] if "__text__" in config else yaml.safe_dump(config)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check-config", handle.name])
    assert code in (0, 2)
    assert (code == 0) == out.getvalue().startswith(handle.name + ": OK")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage",  # not UTF-8
        b"",  # empty: refused (a file caught mid-write reads empty)
        b"[" * 5000,  # deep nesting
        b"policies: " + b"[" * 200 + b"]" * 200,
        b"limit: " + b"9" * 5000 + b"/second",
        "policies: [{name: caf\u00e9}]".encode(),
        b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\ntrusted_proxies: [*c, *c, *c, *c]\n",
        None,  # a directory, not a file
    ],
)
def test_check_config_process_exit_codes(tmp_path: Path, content: bytes | None) -> None:
    """The real command, on files a text editor would not produce: exit 0 or 2,
    one message, never a traceback."""
    path = tmp_path / "config.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "pingpong", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode in (0, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        assert result.stderr.startswith("pingpong: configuration error\n")


def test_sighup_with_a_hostile_config_is_refused(pingpong: PingpongFactory, tmp_path: Path) -> None:
    """A config file nobody could have meant, pushed to a running server:
    refused with a logged reason, the old config keeps serving."""
    config = tmp_path / "pingpong.yaml"
    config.write_text("policies: [{name: first, rate: 1/minute}]\n")
    server = pingpong("--config", str(config))
    config.write_bytes(b"[" * 5000)
    server.signal(signal.SIGHUP)
    wait_until(lambda: "config reload" in server.output() or "Error" in server.output(), 5)
    assert "config reload refused" in server.output(), server.output()[-3000:]
    assert "Traceback" not in server.output(), server.output()[-3000:]
    assert httpx.get(server.url + "/ping").headers["ratelimit-policy"] == '"first";q=1;w=60'
