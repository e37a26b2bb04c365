"""A Redis Cluster of three masters on loopback (no replicas: a killed node's
slots are down until it is back, the fault a test wants to see)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pingpong_toolkit.commands import run
from pingpong_toolkit.ports import HOST, free_ports_with_bus
from pingpong_toolkit.redis import RedisServer
from pingpong_toolkit.waiting import wait_until


class RedisCluster:
    """``RedisCluster().start()``: every node up and ``cluster_state:ok``."""

    def __init__(self, masters: int = 3, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000"]  # fmt: skip
        self.nodes = [
            RedisServer(port, args=args, workdir=self.workdir / str(port))
            for port in free_ports_with_bus(masters)
        ]

    @property
    def url(self) -> str:
        """The client discovers the other nodes from the first one."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    def start(self, timeout: float = 20.0) -> RedisCluster:
        for node in self.nodes:
            node.start()
        run(["redis-cli", "--cluster", "create", *(f"{HOST}:{n.port}" for n in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"], timeout=30)  # fmt: skip
        self.wait_ok(timeout)
        return self

    def state_ok(self) -> bool:
        return all("cluster_state:ok" in node.cli("CLUSTER", "INFO") for node in self.nodes)

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Every node reports cluster_state:ok (after start, or after a node is back)."""
        wait_until(self.state_ok, timeout, 0.1)

    def keys(self) -> set[str]:
        """Every key of every node."""
        return {key for node in self.nodes for key in node.cli("KEYS", "*").split()}

    # -- faults on one node (its slots fail, the others keep answering)

    def kill_node(self, index: int) -> None:
        self.nodes[index].kill()

    def restart_node(self, index: int) -> None:
        """Back on its port with its nodes.conf: it rejoins with its slots."""
        node = self.nodes[index]
        node.stop()
        node.start()

    def pause_node(self, index: int) -> None:
        self.nodes[index].pause()

    def resume_node(self, index: int) -> None:
        self.nodes[index].resume()

    # -- faults on the whole cluster

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def restart(self) -> None:
        for index in range(len(self.nodes)):
            self.restart_node(index)
        self.wait_ok()

    def pause(self) -> None:
        for node in self.nodes:
            node.pause()

    def resume(self) -> None:
        for node in self.nodes:
            node.resume()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
