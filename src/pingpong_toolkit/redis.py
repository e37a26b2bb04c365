"""One redis-server (Debian's) on a loopback port: plain, with a password, or TLS only.

With ``acl_users`` it runs the ACL users production runs (the access strings
terraform gives ElastiCache, ``deploy/terraform/redis-acl/*.acl``), the default
user off, plus an unrestricted ``toolkit`` user for ``cli()`` (what an operator
types: ``ACL LOG``, ``CLIENT PAUSE``).

``kill()``, ``restart()`` (same port, same settings) and ``pause()`` /
``resume()`` (SIGSTOP / SIGCONT) are the faults a test injects.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import redis

from pingpong_toolkit.commands import require
from pingpong_toolkit.ports import HOST, free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.tls import Certificates
from pingpong_toolkit.waiting import eventually

ACL_FILES = Path(__file__).resolve().parents[2] / "deploy" / "terraform" / "redis-acl"
TOOLKIT_USER = "toolkit"


def terraform_access(name: str) -> list[str]:
    """The ACL rules of ``deploy/terraform/redis-acl/<name>.acl`` (one access
    string, as ElastiCache takes it and ``ACL SETUSER`` does)."""
    path = ACL_FILES / f"{name}.acl"
    if not path.is_file():
        raise FileNotFoundError(f"no ACL file {path}: the toolkit runs from the repository")
    return path.read_text().split()


SERVICE_USER, EXPORTER_USER = "pingpong", "pingpong-exporter"  # elasticache.tf's user names


def terraform_users(
    service_password: str, exporter_password: str
) -> dict[str, tuple[str, list[str]]]:
    """The users terraform gives ElastiCache, for ``RedisServer(acl_users=...)``:
    the service's and redis_exporter's, each with its access string."""
    return {
        SERVICE_USER: (service_password, terraform_access("service")),
        EXPORTER_USER: (exporter_password, terraform_access("exporter")),
    }


class RedisServer:
    """``RedisServer(...).start()``; ``url`` is what ``pingpong serve --storage`` takes."""

    def __init__(
        self,
        port: int | None = None,
        *,
        args: Sequence[str] = (),
        password: str | None = None,
        username: str | None = None,
        tls: Certificates | None = None,
        workdir: Path | None = None,
        prefix: Sequence[str] = (),
        acl_users: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    ) -> None:
        """``username`` (with ``password``): an ACL user that may touch only
        ``pp:*`` keys, the default user off; or, named in ``acl_users``
        (``name -> (password, rules)``), a user with exactly those rules (the
        client's and the URL's). ``tls``: TLS on ``port``, no plain port at
        all. ``prefix``: argv before redis-server (``taskset -c 1``)."""
        self.port = port or free_port()
        self.args = list(args)
        self.password = password
        self.username = username
        self.tls = tls
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
        self.prefix = list(prefix)
        self.acl_users = dict(acl_users or {})
        if self.acl_users and (username not in self.acl_users or password is None):
            raise ValueError("with acl_users, username and password name one of them")
        self.toolkit_password = f"toolkit-{self.port}-{id(self)}"
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return self.url_at(self.port)

    def url_at(self, port: int) -> str:
        """This server's URL with another port: the way in through a FaultProxy."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '')}:{quote(self.password)}@"
        if self.tls is None:
            return f"redis://{auth}{HOST}:{port}/0"
        return f"rediss://{auth}{HOST}:{port}/0?ssl_ca_certs={self.tls.ca}"

    def argv(self) -> list[str]:
        argv = [*self.prefix, require("redis-server"), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]  # fmt: skip
        if self.tls is None:
            argv += ["--port", str(self.port)]
        else:
            tls = self.tls
            argv += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
                     "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no"]  # fmt: skip
        if self.acl_users:
            argv += ["--user", "default", "off", "--user", TOOLKIT_USER, "on",
                     f">{self.toolkit_password}", "~*", "&*", "+@all"]  # fmt: skip
            for name, (password, rules) in self.acl_users.items():
                argv += ["--user", name, "on", f">{password}", *rules]
        elif self.password is not None and self.username is not None:
            user = [self.username, "on", f">{self.password}", "~pp:*", "+@all"]
            argv += ["--user", "default", "off", "--user", *user]
        elif self.password is not None:
            argv += ["--requirepass", self.password]
        return [*argv, *self.args]

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        self.process = Process.start(f"redis-{self.port}", self.argv(), log=log)
        if not eventually(self.ping, timeout):
            self.stop()
            raise RuntimeError(f"redis-server on {self.port} did not start:\n{self.output()}")
        return self

    def client(self, **options: object) -> redis.Redis:
        """A redis-py client with this server's address, credentials and CA."""
        settings: dict[str, object] = {"host": HOST, "port": self.port, "socket_timeout": 5}
        if self.password is not None:
            settings.update(username=self.username, password=self.password)
        if self.tls is not None:
            settings.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(**{**settings, **options})  # type: ignore[arg-type]

    def acl_log(self) -> str:
        """``ACL LOG``: every command or key an ACL user was refused (empty: none)."""
        return self.cli("ACL", "LOG")

    def ping(self) -> bool:
        with self.client(socket_timeout=1) as client:
            return bool(client.ping())

    def cli(self, *command: str) -> str:
        """redis-cli's answer, stripped (what a person would type)."""
        argv = [require("redis-cli"), "-h", HOST, "-p", str(self.port)]
        if self.acl_users:
            argv += ["--no-auth-warning", "--user", TOOLKIT_USER, "--pass", self.toolkit_password]
        elif self.password is not None:
            argv += ["--no-auth-warning", "--pass", self.password]
            if self.username is not None:
                argv += ["--user", self.username]
        if self.tls is not None:
            argv += ["--tls", "--cacert", str(self.tls.ca)]
        out = subprocess.run(
            [*argv, *command], capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip()

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def output(self) -> str:
        return self.process.output() if self.process else ""

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    # -- faults

    def kill(self) -> None:
        """SIGKILL: gone at once, every connection reset."""
        if self.process is not None:
            self.process.kill()

    def restart(self, timeout: float = 10.0) -> None:
        """Stopped (if it runs) and started again on the same port, empty."""
        self.stop()
        self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered."""
        if self.process is not None:
            self.process.pause()

    def resume(self) -> None:
        if self.process is not None:
            self.process.resume()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(5)
