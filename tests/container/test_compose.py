"""compose.yaml brought up for real: two app replicas sharing one Redis behind the
HAProxy load balancer (deploy/compose/compose.ci.yaml: Redis and HAProxy from images
built here, since nothing can be pulled). The limit holds across the replicas, and a
replica stopped under traffic drains without a failed request."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from pingpong_toolkit.commands import run
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.waiting import wait_until
from tests import REPO

from .conftest import BASE_IMAGE, BASE_TAG, Docker, tool

pytestmark = pytest.mark.timeout(900)  # the first test may also make the images

LIMIT = 10
REQUESTS = 40
REPLICAS = ("pingpong-1", "pingpong-2")


@dataclass
class Stack:
    compose: list[str]
    env: dict[str, str]
    docker: Docker
    port: int
    containers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        return run([*self.compose, *args], env=self.env, check=check, timeout=timeout).stdout

    def container(self, service: str) -> str:
        """The container id of a service (`docker-compose ps` is slow: asked once)."""
        if service not in self.containers:
            self.containers[service] = self("ps", "-q", service).strip()
        return self.containers[service]

    def metrics(self, service: str) -> str:
        fetch = (
            "import urllib.request; "
            "print(urllib.request.urlopen('http://127.0.0.1:9090/metrics').read().decode())"
        )
        return self.docker("exec", self.container(service), "python", "-c", fetch).stdout


def counter(metrics: str, name: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include `labels`."""
    total = 0.0
    for match in re.finditer(rf"^{name}\{{(.*?)\}} (\S+)$", metrics, re.MULTILINE):
        sample = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(sample.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


@pytest.fixture(scope="module")
def stack(docker: Docker, app_image: str) -> Iterator[Stack]:
    port = free_port()
    project = f"pingpong-test-{uuid.uuid4().hex[:8]}"
    compose = [
        tool("docker-compose"), "--project-name", project, "--project-directory", str(REPO),
        "-f", str(REPO / "compose.yaml"), "-f", str(REPO / "deploy/compose/compose.ci.yaml"),
    ]  # fmt: skip
    env = {
        "PINGPONG_IMAGE": app_image,
        "PINGPONG_LIMIT": f"{LIMIT}/minute",
        "LB_PORT": str(port),
        "BASE_IMAGE": BASE_IMAGE,
        "BASE_TAG": BASE_TAG,
    }
    stack = Stack(compose, env, docker, port)
    # Redis and HAProxy images (Debian packages on the local base); the app image is
    # built already (it needs the CA build secret, which docker-compose cannot pass).
    stack("build", "redis", "lb", timeout=600)
    try:
        # "lb" and what it depends on; `up` waits for each dependency to be healthy.
        stack("up", "--detach", "--no-build", "lb")
        wait_until(lambda: httpx.get(stack.url + "/healthz").status_code == 200, 30)
        yield stack
    finally:
        logs = stack("logs", "--no-color", "--tail", "50", check=False)
        stack("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        print(logs)


def test_everything_came_up_healthy(stack: Stack) -> None:
    for service in ("redis", *REPLICAS, "lb"):
        state = stack.docker.inspect(stack.container(service))["State"]
        assert state["Status"] == "running", service

        def healthy(s: str = service) -> bool:
            return bool(
                stack.docker.inspect(stack.container(s))["State"]["Health"]["Status"] == "healthy"
            )

        wait_until(
            healthy,
            20,
            0.5,
        )


def test_limit_is_shared_across_replicas(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        statuses = [client.get("/ping").status_code for _ in range(REQUESTS)]
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == REQUESTS - LIMIT, statuses

    # Both replicas took their share of the traffic (round robin), each more than
    # the limit: apart, they would have admitted 2 x LIMIT.
    per_replica = {}
    for replica in REPLICAS:
        metrics = stack.metrics(replica)
        allowed = counter(metrics, "pingpong_ratelimit_decisions_total", decision="allowed")
        limited = counter(metrics, "pingpong_ratelimit_decisions_total", decision="limited")
        assert counter(metrics, "pingpong_storage_errors_total") == 0, replica
        per_replica[replica] = (allowed, limited)
    assert all(a + lim > LIMIT for a, lim in per_replica.values()), per_replica
    assert sum(a for a, _ in per_replica.values()) == LIMIT, per_replica

    # The shared state is in Redis: one GCRA key for the one client (the LB's peer),
    # beside the control plane's own counts (pp:{pp-admin}:...).
    redis = stack.container("redis")
    pattern = "pp:{default:*"
    keys = stack.docker("exec", redis, "redis-cli", "--scan", "--pattern", pattern).stdout
    assert len(keys.split()) == 1, keys


def test_replica_stops_without_failed_requests(stack: Stack) -> None:
    """`docker-compose stop pingpong-1` under traffic: the replica drains (its
    /readyz answers 503, HAProxy takes it out) and exits 0; no request fails."""
    statuses: list[int | str] = []
    done = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=stack.url, timeout=5) as client:
            while not done.is_set():
                try:
                    statuses.append(client.get("/healthz").status_code)
                except httpx.HTTPError as exc:
                    statuses.append(type(exc).__name__)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        container = stack.container("pingpong-1")
        stack("stop", "--timeout", "30", "pingpong-1", timeout=60)
    finally:
        done.set()
        worker.join(10)
    assert len(statuses) > 50
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert stack.docker.inspect(container)["State"]["ExitCode"] == 0
