"""pytest fixtures over the toolkit: ``pytest_plugins = ["pingpong_toolkit.fixtures"]``.

- ``redis_server``: a plain redis-server (a ``RedisServer``).
- ``pingpong``: a factory, ``pingpong("--limit", "5/minute", env={...})`` -> a
  started ``Pingpong``, stopped after the test.
- ``pingpong_shared``: one server per module, for read-only contract tests.
- ``fleet``: a factory, ``fleet(3, storage_url, env={...}, place=pin)`` -> a
  started ``Fleet`` of replicas on one storage, stopped after the test.
- One fixture per storage topology, each a ``Topology`` (``url`` and faults):
  ``storage_memory``, ``storage_redis`` and ``storage_rediss`` (through a
  ``FaultProxy``: ``.proxy``), ``storage_sentinel``, ``storage_cluster``; and
  ``storage``, the same chosen by parameter for a matrix:
  ``@pytest.mark.parametrize("storage", TOPOLOGIES, indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from pingpong_toolkit.faultproxy import FaultProxy
from pingpong_toolkit.fleet import Fleet, Place, start_fleet
from pingpong_toolkit.pingpong import Pingpong
from pingpong_toolkit.redis import SERVICE_USER, RedisServer, terraform_users
from pingpong_toolkit.redis_cluster import RedisCluster
from pingpong_toolkit.redis_sentinel import RedisSentinel
from pingpong_toolkit.tls import make_certificates
from pingpong_toolkit.topologies import MemoryTopology, RedisTopology, Topology

TOPOLOGIES = ["memory", "redis", "rediss", "sentinel", "cluster"]
REDISS_PASSWORD = "pp-test-pw"  # noqa: S105 - a throwaway server's password
EXPORTER_PASSWORD = "pp-exporter-pw"  # noqa: S105 - a throwaway server's password
# Tests stop a server at once: no drain unless the test asks for one.
TEST_ENV = {"PINGPONG_DRAIN_SECONDS": "0"}


class PingpongFactory(Protocol):
    def __call__(self, *args: str, env: Mapping[str, str] | None = None) -> Pingpong: ...


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def pingpong(tmp_path: Path) -> Iterator[PingpongFactory]:
    """Factory: pingpong(*args, env={...}) starts a server, stopped afterwards."""
    started: list[Pingpong] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> Pingpong:
        server = Pingpong(args, {**TEST_ENV, **(env or {})})
        started.append(server)
        return server.start(tmp_path)

    yield start
    for server in started:
        server.stop()


class FleetFactory(Protocol):
    def __call__(
        self, count: int, storage_url: str, env: Mapping[str, str], place: Place | None = None
    ) -> Fleet: ...


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetFactory]:
    """Factory: fleet(count, storage_url, env, place) starts replicas, stopped afterwards."""
    started: list[Fleet] = []

    def start(
        count: int, storage_url: str, env: Mapping[str, str], place: Place | None = None
    ) -> Fleet:
        replicas = start_fleet(count, storage_url, {**TEST_ENV, **env}, tmp_path, place)
        started.append(replicas)
        return replicas

    yield start
    for replicas in started:
        replicas.stop()


@pytest.fixture(scope="module")
def pingpong_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pingpong]:
    server = Pingpong(["--limit", "1000/second"], TEST_ENV)
    server.start(tmp_path_factory.mktemp("shared"))
    yield server
    server.stop()


@pytest.fixture
def storage_memory() -> MemoryTopology:
    return MemoryTopology()


@pytest.fixture
def storage_redis(tmp_path: Path) -> Iterator[RedisTopology]:
    server = RedisServer(workdir=tmp_path / "redis").start()
    topology = RedisTopology(server, FaultProxy(server.port).start())
    yield topology
    topology.stop()


@pytest.fixture
def storage_rediss(tmp_path: Path) -> Iterator[RedisTopology]:
    """TLS only, verified against a throwaway CA, with production's ACL users
    (deploy/terraform/redis-acl): the service runs as the restricted
    ``pingpong``, and a test that made it run a command or touch a key outside
    its rules fails here, with Redis' ACL LOG."""
    certificates = make_certificates(tmp_path / "tls")
    server = RedisServer(
        workdir=tmp_path / "redis",
        tls=certificates,
        username=SERVICE_USER,
        password=REDISS_PASSWORD,
        acl_users=terraform_users(REDISS_PASSWORD, EXPORTER_PASSWORD),
    ).start()
    topology = RedisTopology(server, FaultProxy(server.port).start())
    yield topology
    refused = server.acl_log() if server.running() else ""
    topology.stop()
    assert refused == "", f"the service user was refused (ACL LOG):\n{refused}"


@pytest.fixture
def storage_sentinel(tmp_path: Path) -> Iterator[RedisSentinel]:
    sentinel = RedisSentinel(workdir=tmp_path / "sentinel").start()
    yield sentinel
    sentinel.stop()


@pytest.fixture
def storage_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    cluster = RedisCluster(workdir=tmp_path / "cluster").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> Topology:
    """The topology named by the parameter (``indirect=True``); memory without one."""
    name = getattr(request, "param", "memory")
    if name not in TOPOLOGIES:
        raise ValueError(f"unknown topology {name!r}; one of {TOPOLOGIES}")
    topology: Topology = request.getfixturevalue(f"storage_{name}")
    return topology
