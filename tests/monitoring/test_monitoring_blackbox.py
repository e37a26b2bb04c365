"""blackbox_exporter: the http_ping module, checked and then run against a stub."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pingpong_toolkit.commands import run
from pingpong_toolkit.ports import free_port

from . import helpers as mh

PROBLEM_429 = json.dumps(
    {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": "retry later"}
)

# path -> (status, content type, body, should the probe succeed?)
CASES = {
    "/pong": (200, "text/plain", "pong", True),
    "/pong-newline": (200, "text/plain", "pong\n", True),
    "/throttled": (429, "application/problem+json", PROBLEM_429, True),
    "/wrong-body": (200, "text/plain", "ping", False),
    "/pong-in-html": (200, "text/html", "<p>pong</p>", False),
    "/429-other-body": (429, "text/plain", "slow down", False),
    "/server-error": (503, "application/problem+json", PROBLEM_429.replace("429", "503"), False),
    "/not-found": (404, "text/plain", "pong", False),
}


def test_config_check() -> None:
    run([mh.BLACKBOX_EXPORTER, "--config.check", f"--config.file={mh.BLACKBOX_CONFIG}"])


def test_the_chart_renders_a_config_the_exporter_accepts(tmp_path: Path) -> None:
    """The exporter's own checker on the config as the Helm chart renders it.
    prometheus-community/helm-charts, charts/prometheus-blackbox-exporter/
    templates/configmap.yaml (chart 11.0.0, BLACKBOX_EXPORTER_CHART): ``blackbox.yaml: |`` then
    ``{{ toYaml .Values.config | indent 4 }}``. toYaml of a map is the map;
    of a string (what ``--set-file config=FILE`` makes) it is one YAML string,
    which the exporter refuses ("cannot unmarshal !!str")."""
    values = mh.helm_values("blackbox-exporter")
    assert isinstance(values.get("config"), dict), "the chart's config must be a map"
    rendered = tmp_path / "blackbox.yaml"
    rendered.write_text(yaml.safe_dump(values["config"]))  # toYaml
    run([mh.BLACKBOX_EXPORTER, "--config.check", f"--config.file={rendered}"])
    assert values["config"] == yaml.safe_load(mh.BLACKBOX_CONFIG.read_text())
    assert values.get("fullnameOverride") == "blackbox-exporter"  # the Probe's prober URL


def test_config_check_refuses_the_config_as_a_string(tmp_path: Path) -> None:
    """The broken shape, so the test above cannot pass by the checker accepting
    anything: the file's text rendered as one string."""
    rendered = tmp_path / "blackbox.yaml"
    rendered.write_text(yaml.safe_dump(mh.BLACKBOX_CONFIG.read_text()))
    result = run([mh.BLACKBOX_EXPORTER, "--config.check", f"--config.file={rendered}"], check=False)
    assert result.returncode != 0
    assert "!!str" in result.stdout + result.stderr


def test_config_check_rejects_a_broken_module(tmp_path: Path) -> None:
    broken = tmp_path / "blackbox.yml"
    broken.write_text(
        "modules:\n  x:\n    prober: http\n    http:\n"
        "      fail_if_body_not_matches_regexp: ['(']\n"  # not a regexp
    )
    result = run([mh.BLACKBOX_EXPORTER, "--config.check", f"--config.file={broken}"], check=False)
    assert result.returncode != 0


class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the module accepts HTTP/1.1 and HTTP/2 only

    def do_GET(self) -> None:
        status, ctype, body, _ = CASES[self.path]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Stub) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """blackbox_exporter with our config on a free loopback port; its base URL."""
    port = free_port()
    argv = [
        mh.BLACKBOX_EXPORTER,
        f"--config.file={mh.BLACKBOX_CONFIG}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    base = f"http://127.0.0.1:{port}"
    with mh.serving("blackbox", argv, f"{base}/-/healthy", tmp_path_factory.mktemp("blackbox")):
        yield base


@pytest.mark.parametrize("path", CASES)
def test_http_ping_module(stub: str, exporter: str, path: str) -> None:
    query = urllib.parse.urlencode({"module": "http_ping", "target": stub + path})
    url = f"{exporter}/probe?{query}"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback URL built here)
        metrics = resp.read().decode()
    success = re.search(r"^probe_success (\S+)$", metrics, re.MULTILINE)
    assert success, metrics
    expected = CASES[path][3]
    assert float(success.group(1)) == (1.0 if expected else 0.0), f"{path}:\n{metrics}"
