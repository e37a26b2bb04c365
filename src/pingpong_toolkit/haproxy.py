"""HAProxy (Debian's) from a config text, and its runtime API (the stats socket).

``balancer_config`` is the config tests and bench run: the load shedding of the
shipped one (deploy/compose/haproxy/haproxy.cfg, the same values and the same
503 file), so what they measure is what compose serves.

Weights and server states change on the running process: no reload, so no
connection is dropped and no request is lost while traffic moves. The socket
is a unix path or ``host:port`` (a TCP ``stats socket ipv4@...``); one command
per connection, as the non-interactive mode of the API expects.
"""

from __future__ import annotations

import csv
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pingpong_toolkit.commands import require, run
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.waiting import eventually

# The load shedding in front of each replica's queue (HAProxy configuration manual,
# server option "maxconn", "timeout queue"): at most SERVER_MAXCONN requests at a
# replica at once, half the app's max_in_flight default (what waits in the
# replica's loop counts here: 128 / ~2,500 decisions a second on Redis is a mean
# wait of half the 0.1 s SLO); the excess waits in HAProxy's queue at most
# QUEUE_TIMEOUT_MS, then gets ERRORS/503.http, the app's own shed answer.
SERVER_MAXCONN = 128
QUEUE_TIMEOUT_MS = 2
ERRORS = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "haproxy" / "errors"
SHED_LOG = re.compile(
    r"^shed (?P<status>\d+) (?P<queued>-?\d+) (?P<active>\d+) (?P<state>\S+)$", re.M
)
BALANCER = """
global
    stats socket {socket} mode 600 level admin
    maxconn 4096
    log stdout format raw local0

defaults
    mode http
    log global
    # Only what ended abnormally (a queue timeout's 503 is "sQ"), in ms: SHED_LOG.
    option dontlog-normal
    log-format "shed %ST %Tw %Ta %tsc"
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    timeout queue {queue_ms}ms
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

http-errors pingpong-errors
    errorfile 503 {errors}/503.http

frontend pingpong
    bind 127.0.0.1:{port}
    default_backend replicas

frontend stats
    bind 127.0.0.1:{stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}

backend replicas
    balance roundrobin
    errorfiles pingpong-errors
    http-response del-header server
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header X-Server %[srv_name]
    default-server check inter {inter_ms}ms fall 1 rise 2 maxconn {maxconn}
{servers}
"""


def balancer_config(
    port: int,
    stats_port: int,
    socket_path: str,
    servers: dict[str, int],
    check_inter: float = 0.5,
    maxconn: int = SERVER_MAXCONN,
) -> str:
    """HAProxy on 127.0.0.1:``port`` in front of ``servers`` (name -> local port),
    health-checked on /readyz, retrying a failed connection elsewhere, shedding as
    the shipped config does; its Prometheus metrics on ``stats_port``."""
    lines = [f"    server {name} 127.0.0.1:{p}" for name, p in servers.items()]
    return BALANCER.format(
        socket=socket_path, port=port, stats_port=stats_port, queue_ms=QUEUE_TIMEOUT_MS,
        errors=ERRORS, inter_ms=int(check_inter * 1000), maxconn=maxconn,
        servers="\n".join(lines),
    )  # fmt: skip


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


@dataclass
class Balancer:
    """A started ``balancer_config`` HAProxy: ``url`` its frontend, ``metrics_url``
    its Prometheus exporter (``/metrics``)."""

    haproxy: HAProxy
    url: str
    metrics_url: str

    @classmethod
    def start(
        cls,
        workdir: Path,
        servers: dict[str, int],
        check_inter: float = 0.5,
        maxconn: int = SERVER_MAXCONN,
    ) -> Balancer:
        """Until every server is up by HAProxy's own health checks."""
        port, stats_port = free_port(), free_port()
        sock = str(workdir / "haproxy.sock")
        config = balancer_config(port, stats_port, sock, servers, check_inter, maxconn)
        haproxy = HAProxy.start(config, workdir, sock, "replicas")
        try:
            haproxy.wait_up(*servers)
        except HAProxyError:
            haproxy.stop()
            raise
        url = f"http://127.0.0.1:{port}"
        return cls(haproxy, url, f"http://127.0.0.1:{stats_port}/metrics")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def status(self) -> dict[str, str]:
        """Server name -> UP / DOWN / ... from ``show stat``."""
        return self.haproxy.api.status()

    def shed(self) -> int:
        """Requests HAProxy refused itself, from its Prometheus metrics: the
        backend's connection errors no server had (a queue timeout is the
        backend's: the request never reached a server)."""
        errors = {"backend": 0.0, "server": 0.0}
        for family in text_string_to_metric_families(httpx.get(self.metrics_url).text):
            for level in errors:
                if family.name == f"haproxy_{level}_connection_errors":
                    errors[level] += sum(sample.value for sample in family.samples)
        return int(errors["backend"] - errors["server"])

    def shed_times(self) -> list[float]:
        """Seconds each request HAProxy refused itself spent in it, from its
        receipt to the 503 (the %Ta timer of its log): the balancer's share of
        a 503's latency, apart from the client's own and its CPU's."""
        return [
            int(match["active"]) / 1000
            for match in SHED_LOG.finditer(self.haproxy.process.output())
            if match["state"].startswith("sQ")
        ]

    def stop(self) -> None:
        self.haproxy.stop()
