"""``pingpong admin`` keeps its token to the origin it was given and keeps
the operator's terminal clean, against real loopback HTTP servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pingpong.cli import main
from pingpong.cli_admin import check_url, printable

TOKEN = "cli-token-0123456789"  # noqa: S105 - a test token


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with ``server.answer``; records what it got."""

    def do_GET(self) -> None:
        server: Any = self.server
        server.seen.append(self.headers.get("authorization"))
        status, headers, body = server.answer
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started = []
    for _ in range(2):
        server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def url(server: Any) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_token_never_leaves_its_origin(
    servers: list[Any], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    origin, elsewhere = servers
    origin.answer = (status, [("location", url(elsewhere) + "/admin/v1/overrides")], b"")
    code = main(["admin", "overrides", "--url", url(origin), "--token", TOKEN])
    assert code == 1
    assert origin.seen == [f"Bearer {TOKEN}"]
    assert elsewhere.seen == []  # never followed, so never sent the token
    assert "redirect" in capsys.readouterr().err


def test_plain_http_to_another_host_needs_a_flag() -> None:
    for loopback in ("http://127.0.0.1:8081", "http://[::1]:8081", "http://localhost:8081",
                     "https://admin.example.com"):  # fmt: skip
        check_url(loopback, plain_http=False)
    with pytest.raises(ValueError, match="--plain-http"):
        check_url("http://203.0.113.5:8081", plain_http=False)
    with pytest.raises(ValueError, match="--plain-http"):
        check_url("http://admin.internal:8081", plain_http=False)
    check_url("http://203.0.113.5:8081", plain_http=True)
    with pytest.raises(ValueError, match="http:// or https://"):
        check_url("ftp://127.0.0.1", plain_http=True)


def test_plain_http_refusal_is_a_usage_error_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["admin", "overrides", "--url", "http://203.0.113.5:8081", "--token", TOKEN])
    assert code == 2
    assert "--plain-http" in capsys.readouterr().err


def test_control_characters_from_the_service_are_escaped(
    servers: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    origin, _ = servers
    hostile = "\x1b[2J\x1b]0;owned\x07\u202eevil\nfake line"
    body = (
        '{"overrides": [{"policy": "default", "key": "1.2.3.4", "rate": "1/second",'
        f' "burst": null, "expires_at": 4102444800, "reason": {json.dumps(hostile)},'
        f' "created_by": {json.dumps(hostile)}, "created_at": 0}}]}}'
    ).encode()
    origin.answer = (200, [("content-type", "application/json")], body)
    assert main(["admin", "overrides", "--url", url(origin), "--token", TOKEN]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\u202e")
    assert out.count("\n") == 1  # one override, one line
    assert "\\x1b[2J" in out and "\\u202e" in out
    assert printable("Zürich 東京 \u2013 ok") == "Zürich 東京 \u2013 ok"
