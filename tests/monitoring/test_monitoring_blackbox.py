"""blackbox_exporter: the http_ping module, checked and then run against a stub."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

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


def test_config_check():
    result = mh.run(
        [mh.tool(mh.BLACKBOX_EXPORTER), "--config.check", f"--config.file={mh.BLACKBOX_CONFIG}"]
    )
    mh.assert_ok(result)


def test_config_check_rejects_a_broken_module(tmp_path):
    broken = tmp_path / "blackbox.yml"
    broken.write_text(
        "modules:\n  x:\n    prober: http\n    http:\n"
        "      fail_if_body_not_matches_regexp: ['(']\n"  # not a regexp
    )
    result = mh.run([mh.tool(mh.BLACKBOX_EXPORTER), "--config.check", f"--config.file={broken}"])
    assert result.returncode != 0


class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the module accepts HTTP/1.1 and HTTP/2 only

    def do_GET(self):
        status, ctype, body, _ = CASES[self.path]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def exporter():
    port = mh.free_port()
    proc = subprocess.Popen(
        [
            mh.tool(mh.BLACKBOX_EXPORTER),
            f"--config.file={mh.BLACKBOX_CONFIG}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        mh.wait_http(f"{base}/-/healthy", proc)
        yield base
    finally:
        mh.stop(proc)


@pytest.mark.parametrize("path", CASES)
def test_http_ping_module(stub, exporter, path):
    query = urllib.parse.urlencode({"module": "http_ping", "target": stub + path})
    url = f"{exporter}/probe?{query}"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback URL built here)
        metrics = resp.read().decode()
    success = re.search(r"^probe_success (\S+)$", metrics, re.MULTILINE)
    assert success, metrics
    expected = CASES[path][3]
    assert float(success.group(1)) == (1.0 if expected else 0.0), f"{path}:\n{metrics}"
