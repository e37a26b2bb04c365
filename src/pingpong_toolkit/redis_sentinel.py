"""Redis Sentinel on loopback: a master, a replica and sentinels watching them.

``kill()`` / ``pause()`` hit the current master; sentinels promote the replica
after ``down_after`` ms. ``failover()`` asks for a promotion without a fault.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pingpong_toolkit.commands import require
from pingpong_toolkit.ports import HOST, free_port
from pingpong_toolkit.processes import Process
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until

SERVICE = "pp"


class RedisSentinel:
    def __init__(
        self, sentinels: int = 1, down_after: int = 1000, workdir: Path | None = None
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="redis-sentinel-"))
        self.down_after = down_after
        master = RedisServer(workdir=self.workdir / "a")
        replica = RedisServer(
            workdir=self.workdir / "b", args=["--replicaof", HOST, str(master.port)]
        )
        self.servers = [master, replica]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.sentinels: list[Process] = []
        self.paused: RedisServer | None = None
        self.killed: RedisServer | None = None

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def start(self, timeout: float = 15.0) -> RedisSentinel:
        for server in self.servers:
            server.start()
        quorum = len(self.sentinel_ports) // 2 + 1
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind {HOST}\n"
                f"sentinel monitor {SERVICE} {HOST} {self.servers[0].port} {quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            log = self.workdir / f"sentinel-{port}.log"
            argv = [require("redis-sentinel"), str(conf)]
            self.sentinels.append(Process.start(f"sentinel-{port}", argv, log=log))
        wait_until(self.replicas_known, timeout)
        return self

    def sentinel(self, *command: str) -> str:
        """A command to the first sentinel, e.g. ``SENTINEL get-master-addr-by-name pp``."""
        probe = RedisServer(self.sentinel_ports[0], workdir=self.workdir)
        return probe.cli(*command)

    def replicas_known(self) -> bool:
        return "slave" in self.sentinel("SENTINEL", "replicas", SERVICE)

    @property
    def master(self) -> RedisServer:
        """The server the sentinels name as master now."""
        port = int(self.sentinel("SENTINEL", "get-master-addr-by-name", SERVICE).split()[-1])
        return next(server for server in self.servers if server.port == port)

    @property
    def replica(self) -> RedisServer:
        master = self.master
        return next(server for server in self.servers if server is not master)

    def wait_promoted(self, server: RedisServer, timeout: float = 20.0) -> None:
        """Until ``server`` says it is the master (and the sentinels agree)."""
        wait_until(
            lambda: "role:master" in server.cli("INFO", "replication") and self.master is server,
            timeout,
            0.1,
        )

    def failover(self, timeout: float = 20.0) -> RedisServer:
        """Promote the replica without a fault; the new master."""
        replica = self.replica
        # Refused (NOGOODSLAVE) until the sentinels have seen the replica in sync.
        wait_until(lambda: self.sentinel("SENTINEL", "FAILOVER", SERVICE) == "OK", timeout, 0.2)
        self.wait_promoted(replica, timeout)
        return replica

    # -- faults on the current master

    def kill(self) -> None:
        self.killed = self.master
        self.killed.kill()

    def restart(self) -> None:
        """The server ``kill()`` killed started again (the sentinels may have
        promoted the replica meanwhile: it comes back as its replica), or else
        the master killed and started again."""
        server, self.killed = self.killed or self.master, None
        server.kill()
        server.start()

    def pause(self) -> None:
        self.paused = self.master
        self.paused.pause()

    def resume(self) -> None:
        """The server ``pause()`` froze (the master may have changed meanwhile)."""
        if self.paused is not None:
            self.paused.resume()
            self.paused = None

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop(5)
        self.resume()
        for server in self.servers:
            server.stop()
