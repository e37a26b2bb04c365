"""The storages a fault matrix runs against, all with one shape.

Each has ``name``, ``url`` (for ``pingpong serve --storage``) and the faults
``kill()``, ``restart()``, ``pause()`` / ``resume()``; the Redis ones more
(``RedisTopology.proxy`` for network faults, ``RedisCluster.kill_node(i)``,
``RedisSentinel.failover()``).
"""

from __future__ import annotations

from typing import Protocol

from pingpong_toolkit.faultproxy import FaultProxy
from pingpong_toolkit.redis import RedisServer


class Topology(Protocol):
    @property
    def url(self) -> str: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class MemoryTopology:
    """``memory://``: the storage lives in the service, there is nothing to fail.
    The faults do nothing: the row of the matrix every other row is compared with."""

    url = "memory://"

    def kill(self) -> None:
        """Nothing outside the service to kill."""

    def restart(self) -> None:
        """Nothing outside the service to restart."""

    def pause(self) -> None:
        """Nothing outside the service to pause."""

    def resume(self) -> None:
        """Nothing outside the service to resume."""


class RedisTopology:
    """One redis-server (plain, or TLS), reached through a FaultProxy: ``url``
    goes through the proxy, ``server.url`` around it."""

    def __init__(self, server: RedisServer, proxy: FaultProxy) -> None:
        self.server = server
        self.proxy = proxy

    @property
    def url(self) -> str:
        return self.server.url_at(self.proxy.port)

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server.restart()

    def pause(self) -> None:
        self.server.pause()

    def resume(self) -> None:
        self.server.resume()

    def stop(self) -> None:
        self.proxy.stop()
        self.server.stop()
