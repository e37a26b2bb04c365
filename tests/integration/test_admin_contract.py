"""The admin API against its own OpenAPI document, on a real socket: the
schemas generated from the request and answer models describe what the
listener really accepts and answers (schemathesis)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.ports import free_port

TOKEN = "contract-token-0123456789"  # noqa: S105 - a test token


def test_schemathesis_against_the_admin_api(pingpong: PingpongFactory) -> None:
    st_cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st_cli is None:
        pytest.fail("schemathesis is not installed in the venv (constraints.txt pins it)")
    port = free_port()
    server = pingpong("--admin-port", str(port), env={"PINGPONG_ADMIN_TOKEN": TOKEN})
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,"
    checks += "response_schema_conformance"
    result = subprocess.run(
        [
            st_cli, "run", f"http://127.0.0.1:{port}/openapi.json",
            "--header", f"Authorization: Bearer {TOKEN}",
            "--checks", checks,
            "--max-examples", "15",
            "--seed", "7",
            "--request-timeout", "5",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Traceback" not in server.output()
