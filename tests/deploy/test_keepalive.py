"""The ALB must close idle connections before pingpong does.

AWS, "Application Load Balancers / Connection idle timeout": "we recommend
that you configure the idle timeout of your application to be larger than
the idle timeout configured for the load balancer"; otherwise the load
balancer reuses a connection the target is closing and answers 502.

granian 2.8 (HTTP1Settings: header_read_timeout, keep_alive, max_buffer_size,
pipeline_flush) has no idle keep-alive timeout of its own: hyper's
header-read timer also runs while a kept-alive connection waits for its next
request, so pingpong's idle limit is HEADER_TIMEOUT_MS. The Ingress sets the
ALB idle timeout below it; this test holds a real server to that.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from pingpong.server import granian_server as server
from pingpong_toolkit.pingpong import Pingpong

from .helpers import captured, find, workload

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: pingpong\r\n\r\n"


def alb_idle_timeout(ingress: dict[str, Any]) -> int:
    attributes = ingress["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/load-balancer-attributes"
    ]
    return int(captured(r"idle_timeout\.timeout_seconds=(\d+)", attributes))


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_alb_idle_timeout_is_below_the_servers(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    idle = alb_idle_timeout(find(rendered[overlay], "Ingress", "pingpong"))
    # Strictly below, with a margin for the timers' different start points.
    assert idle + 2 <= server.HEADER_TIMEOUT_MS / 1000, (idle, server.HEADER_TIMEOUT_MS)
    # Defence against slow-header clients stays: the timeout is finite and short.
    assert server.HEADER_TIMEOUT_MS <= 30_000
    assert workload(rendered[overlay])  # the Ingress fronts this workload


def test_idle_connection_outlives_the_alb_idle_timeout(
    rendered: dict[str, list[dict[str, Any]]], pingpong_shared: Pingpong
) -> None:
    """One request, idle one second longer than the ALB would, then a second
    request on the same connection: the server must still answer it."""
    idle = alb_idle_timeout(find(rendered["prod"], "Ingress", "pingpong"))
    address = (pingpong_shared.host, pingpong_shared.port)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(idle + 1)
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200"), "server closed the idle connection"
