"""granian (Rust HTTP/1.1, RSGI) embedded, on a socket bound by pingpong.

granian is embedded rather than run as a CLI so that pingpong owns the event
loop and the signals (the drain: see ``worker``). The socket is bound here,
without SO_REUSEPORT, so a second instance on a taken port fails instead of
silently sharing it, and prefork workers share the one socket.
"""

from __future__ import annotations

import socket
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.net import SocketHolder
from granian.server.embed import Server as EmbeddedServer

GRACEFUL_SHUTDOWN_SECONDS = 30
BACKLOG = 2048
HEADER_TIMEOUT_MS = 10_000  # a client still sending its headers after 10 s is cut off
MAX_HEAD_BYTES = 48 * 1024  # request line + headers; larger heads get 431 from granian
# (hyper grows its read buffer in steps: 48 KiB is a size it enforces exactly,
# 40 KiB was enforced as 48; tests/integration/test_hostile_input.py checks the edge)


class Granian(EmbeddedServer):
    """granian's embedded server on a socket bound by pingpong. (The benchmark
    runs its reference ASGI callable on this very class.)

    It overrides ``_init_shared_socket`` and sets ``workers_kill_timeout``:
    tests/unit/test_architecture.py fails if a granian upgrade drops them.
    """

    def __init__(
        self, app: Any, sock: socket.socket, interface: Interfaces = Interfaces.RSGI
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(
            app,
            address=host,
            port=port,
            interface=interface,
            http=HTTPModes.http1,
            websockets=False,
            backlog=BACKLOG,
            http1_settings=HTTP1Settings(
                header_read_timeout=HEADER_TIMEOUT_MS, max_buffer_size=MAX_HEAD_BYTES
            ),
            # Only set the level of granian's logger, which then goes through ours
            # (its notices, such as "embedded server is experimental", are noise here).
            log_level=LogLevels.error,
            log_dictconfig={"incremental": True, "handlers": {}, "loggers": {}},
        )
        self.workers_kill_timeout = GRACEFUL_SHUTDOWN_SECONDS
        self._fd = sock.detach()

    def _init_shared_socket(self) -> None:
        # The stub lists no constructor; the type is (fd, is_unix_socket, backlog).
        self._shd = SocketHolder(self._fd, False, BACKLOG)  # type: ignore[call-arg,assignment]


def bind(host: str, port: int) -> socket.socket:
    """``::`` listens on IPv4 too, as it does by default on Linux."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    return socket.create_server(
        (host, port), family=family, backlog=BACKLOG, dualstack_ipv6=dualstack
    )


def listen(host: str, port: int, what: str = "") -> socket.socket:
    """``bind``, a taken port worded as the one startup error (exit 1)."""
    try:
        return bind(host, port)
    except OSError as exc:
        raise SystemExit(f"pingpong: cannot listen{what} on {host}:{port}: {exc}") from None
