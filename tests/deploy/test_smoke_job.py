"""The smoke test's Job script, run for real against a real pingpong: the
release image's own Python (components/analysis/analysistemplate-smoke.yaml
runs /opt/venv/bin/python -c SCRIPT in the release image), with the Service
name and ports the AnalysisTemplate gives it swapped for a local server's.
It passes a good version and fails one whose /ping answers 500."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.ports import free_port

from .helpers import K8S

TEMPLATE = K8S / "components" / "analysis" / "analysistemplate-smoke.yaml"


def smoke_script(port: int, metrics_port: int) -> str:
    (metric,) = yaml.safe_load(TEMPLATE.read_text())["spec"]["metrics"]
    (container,) = metric["provider"]["job"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/opt/venv/bin/python", "-c"]
    script: str = container["args"][0]
    assert "{{args.service}}:8080" in script and "{{args.service}}:9090" in script
    return script.replace("{{args.service}}:8080", f"127.0.0.1:{port}").replace(
        "{{args.service}}:9090", f"127.0.0.1:{metrics_port}"
    )


@pytest.fixture(params=["good", "failing"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Pingpong, int]]:
    metrics_port = free_port()
    args = ["--metrics-port", str(metrics_port), "--limit", "1000/minute"]
    if request.param == "failing":
        args += ["--fault-error-rate", "1.0"]
    pingpong = Pingpong(args, {"PINGPONG_COMMIT": "abc123"}).start(tmp_path)
    try:
        yield request.param, pingpong, metrics_port
    finally:
        pingpong.stop()


def test_the_smoke_script_passes_a_good_version_and_fails_a_bad_one(
    server: tuple[str, Pingpong, int],
) -> None:
    kind, pingpong, metrics_port = server
    script = smoke_script(pingpong.port, metrics_port)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    if kind == "good":
        assert result.returncode == 0, result.stderr
        assert "GET /ping -> 200" in result.stdout
        assert '"commit":"abc123"' in result.stdout.replace(" ", "")
    else:
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "smoke test failed: /ping answered 500" in result.stderr
