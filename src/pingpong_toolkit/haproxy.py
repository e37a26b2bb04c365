"""HAProxy (Debian's) from a config text, and its runtime API (the stats socket).

Weights and server states change on the running process: no reload, so no
connection is dropped and no request is lost while traffic moves. The socket
is a unix path or ``host:port`` (a TCP ``stats socket ipv4@...``); one command
per connection, as the non-interactive mode of the API expects.
"""

from __future__ import annotations

import csv
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pingpong_toolkit.commands import require, run
from pingpong_toolkit.processes import Process
from pingpong_toolkit.waiting import eventually

ERROR_SHAPES = ("no such", "unknown", "permission denied", "require", "expects", "invalid",
                "not found", "cannot", "can't", "not ready")  # fmt: skip


class HAProxyError(RuntimeError):
    """HAProxy refused a command or could not be reached."""


@dataclass(frozen=True)
class ServerStat:
    """One server line of ``show stat``, the fields a rollout decides on."""

    name: str
    status: str  # UP, DOWN, MAINT, DRAIN, "UP 1/2", "no check", ...
    weight: int
    current_sessions: int

    @property
    def up(self) -> bool:
        """Serving per the health checks (DRAIN still serves its open sessions)."""
        return self.status.startswith(("UP", "DRAIN", "no check"))


class RuntimeAPI:
    """A thin client: ``command()`` plus the handful of commands a rollout uses."""

    def __init__(self, address: str, backend: str, timeout: float = 5.0) -> None:
        self.address = address
        self.backend = backend
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        if ":" in self.address and not self.address.startswith("/"):
            host, port = self.address.rsplit(":", 1)
            return socket.create_connection((host, int(port)), timeout=self.timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
        except OSError:
            sock.close()  # not there yet: no socket left for the collector
            raise
        return sock

    def command(self, line: str, check: bool = True) -> str:
        """Send one command, return HAProxy's whole answer.

        The API reports errors as text, not as a status, so with ``check`` an
        answer of a known error shape raises (``show`` output is not checked).
        """
        try:
            with self._connect() as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyError(f"runtime API {self.address}: {exc}") from exc
        answer = b"".join(chunks).decode(errors="replace").strip()
        if check and any(shape in answer.lower() for shape in ERROR_SHAPES):
            raise HAProxyError(f"{line!r}: {answer}")
        return answer

    def set_weight(self, server: str, weight: int) -> None:
        self.command(f"set weight {self.backend}/{server} {weight}")

    def set_weights(self, weights: dict[str, int]) -> None:
        """Several servers, the one losing weight last, so the total never hits 0."""
        for server, weight in sorted(weights.items(), key=lambda item: -item[1]):
            self.set_weight(server, weight)

    def get_weight(self, server: str) -> int:
        # Answer: "<current> (initial <initial>)"
        return int(self.command(f"get weight {self.backend}/{server}").split()[0])

    def set_state(self, server: str, state: str) -> None:
        """ready | drain | maint (drain: no new traffic, health checks go on)."""
        self.command(f"set server {self.backend}/{server} state {state}")

    def set_addr(self, server: str, host: str, port: int) -> None:
        """Point a server slot at a new address (green gets a port at run time)."""
        self.command(f"set server {self.backend}/{server} addr {host} port {port}")

    def stats(self) -> dict[str, ServerStat]:
        """The backend's servers as ``show stat`` sees them now."""
        text = self.command("show stat", check=False).lstrip("# ")
        stats = {}
        for row in csv.DictReader(text.splitlines()):
            if row.get("pxname") != self.backend or row["svname"] in ("FRONTEND", "BACKEND"):
                continue
            stats[row["svname"]] = ServerStat(
                name=row["svname"],
                status=row["status"],
                weight=int(row["weight"] or 0),
                current_sessions=int(row["scur"] or 0),
            )
        return stats

    def status(self) -> dict[str, str]:
        """Server name -> UP / DOWN / MAINT / ..."""
        return {name: stat.status for name, stat in self.stats().items()}

    def server(self, name: str) -> ServerStat:
        stats = self.stats()
        if name not in stats:
            raise HAProxyError(f"no server {name!r} in backend {self.backend!r}: {list(stats)}")
        return stats[name]

    def wait_status(self, server: str, up: bool, timeout: float) -> bool:
        """Wait until HAProxy's own health checks agree (True) or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(server).up == up:
                return True
            time.sleep(0.1)
        return False

    def wait_idle(self, server: str, timeout: float) -> bool:
        """Wait until no session is open on ``server`` (its in-flight requests are done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(server).current_sessions == 0:
                return True
            time.sleep(0.1)
        return False


class HAProxy:
    """``HAProxy.start(config, workdir, socket, backend)``: a checked config, a running
    process, and ``api`` on its stats socket (the config must declare it)."""

    def __init__(self, process: Process, config: Path, api: RuntimeAPI) -> None:
        self.process = process
        self.config = config
        self.api = api

    @classmethod
    def start(cls, config_text: str, workdir: Path, socket_path: str, backend: str) -> HAProxy:
        """Refuses a config ``haproxy -c`` refuses; waits for the runtime API."""
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "haproxy.cfg"
        config.write_text(config_text)
        run(["haproxy", "-c", "-f", str(config)], timeout=30)
        argv = [require("haproxy"), "-db", "-f", str(config)]
        process = Process.start("haproxy", argv, log=workdir / "haproxy.log")
        haproxy = cls(process, config, RuntimeAPI(socket_path, backend))
        if not eventually(haproxy.api.stats, 10):
            haproxy.stop()
            raise HAProxyError(f"HAProxy did not start:\n{process.tail()}")
        return haproxy

    def wait_up(self, *servers: str, timeout: float = 15.0) -> None:
        """Until HAProxy's health checks see every named server up."""
        if not eventually(lambda: all(self.api.server(s).up for s in servers), timeout):
            raise HAProxyError(f"{servers} never up: {self.api.status()}\n{self.process.tail()}")

    def stop(self) -> None:
        self.process.stop(10)
