"""Loopback ports: other servers may already listen here, so ports are picked at run time."""

from __future__ import annotations

import random
import socket

from pingpong_toolkit.waiting import eventually

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_ports_with_bus(count: int, bus_offset: int = 10000) -> list[int]:
    """``count`` consecutive free ports whose ``port + bus_offset`` are free too
    (a Redis Cluster node also listens on its bus port, P + 10000)."""
    for _ in range(200):
        base = random.randint(20000, 55535 - bus_offset - count)
        ports = list(range(base, base + count))
        if all(port_free(p) and port_free(p + bus_offset) for p in ports):
            return ports
    raise RuntimeError(f"no {count} free consecutive ports with free bus ports")


def port_open(port: int, host: str = HOST) -> bool:
    """Something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 10.0, host: str = HOST) -> bool:
    return eventually(lambda: port_open(port, host), timeout)
