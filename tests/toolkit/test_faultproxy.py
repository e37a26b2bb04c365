"""The fault proxy really misbehaves: measured with raw sockets to a real redis-server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from pingpong_toolkit.faultproxy import FaultProxy
from pingpong_toolkit.ports import HOST
from pingpong_toolkit.redis import RedisServer


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as proxy:
        yield proxy


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection((HOST, proxy.port), timeout=2)
    assert ping(sock) == b"+PONG\r\n"  # forwarded both ways
    return sock


def ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(64)


def test_delay_holds_every_chunk_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.delay(0.2)
        started = time.monotonic()
        assert ping(sock) == b"+PONG\r\n"
        assert time.monotonic() - started >= 0.4  # the request, then the answer
        proxy.heal()
        started = time.monotonic()
        assert ping(sock) == b"+PONG\r\n"
        assert time.monotonic() - started < 0.2


def test_stall_forwards_nothing_until_flow(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.stall()
        sock.sendall(b"PING\r\n")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(64)
        assert proxy.connections == 1  # still open: a stall is not a drop
        proxy.flow()
        sock.settimeout(2)
        assert sock.recv(64) == b"+PONG\r\n"


def test_drop_closes_and_reset_aborts(proxy: FaultProxy) -> None:
    with connect(proxy) as dropped, connect(proxy) as reset:
        assert proxy.drop() == 2
        assert dropped.recv(64) == b""  # FIN: an orderly end of stream
    with connect(proxy) as reset:
        assert proxy.reset() == 1
        with pytest.raises(ConnectionResetError):
            reset.recv(64)
    assert proxy.connections == 0
    with connect(proxy):  # new connections are still welcome
        assert proxy.accepted == 4


def test_refuse_then_accept_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2)
    proxy.accept()
    assert proxy.port == port
    with connect(proxy):
        pass
