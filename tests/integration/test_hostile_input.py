"""Hostile or broken HTTP never reaches a 500 or a crash."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from pingpong_toolkit.fixtures import PingpongFactory
from pingpong_toolkit.pingpong import Pingpong


def raw(url: str, request: bytes, timeout: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
        (b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-Many: y\r\n" * 5000 + b"\r\n", 431),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"BREW /ping HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"DELETE /ping HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400),  # TLS to plain HTTP
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \xff\xfe, ::::\r\n\r\n", 200),
        (b"GET /ping?%zz=%%%&a[]=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET /ping?a=\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ],
)
def test_bad_requests_get_4xx(pingpong_shared: Pingpong, request_bytes: bytes, status: int) -> None:
    assert status_of(raw(pingpong_shared.url, request_bytes)) == status
    assert httpx.get(pingpong_shared.url + "/healthz").status_code == 200  # still alive


def head_of(total: int) -> bytes:
    """A request head of exactly ``total`` bytes (line, headers, blank line)."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
    return start + b"a" * (total - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize(("size", "status"), [(48 * 1024, 200), (48 * 1024 + 1, 431)])
def test_the_head_limit_is_48_kib_to_the_byte(
    pingpong_shared: Pingpong, size: int, status: int
) -> None:
    """README: a request head (line and headers) over 48 KiB gets 431."""
    request = head_of(size)
    assert len(request) == size
    assert status_of(raw(pingpong_shared.url, request)) == status


def test_slow_headers_are_cut_off(pingpong: PingpongFactory) -> None:
    """A client that has not finished its headers after 10 s is disconnected
    (granian's header read timeout closes without an answer)."""
    server = pingpong()
    started = time.monotonic()
    response = raw(server.url, b"GET /ping HTTP/1.1\r\nHo", timeout=20)
    waited = time.monotonic() - started
    assert response == b""
    assert 9.0 <= waited <= 13.0
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_rejections_are_counted_not_logged(pingpong: PingpongFactory) -> None:
    server = pingpong()
    for _ in range(20):
        assert status_of(raw(server.url, b"BREW /ping HTTP/1.1\r\nHost: x\r\n\r\n")) == 405
        assert status_of(raw(server.url, b"\x16\x03\x01garbage\r\n\r\n")) == 400
    metrics = httpx.get(server.url + "/metrics").text
    assert 'pingpong_http_requests_total{method="OTHER",route="/ping",status="405"} 20.0' in metrics
    output = server.output()
    assert "BREW" not in output
    assert "garbage" not in output
