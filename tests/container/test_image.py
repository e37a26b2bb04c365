"""The app image, built and run on a real Docker engine: it serves and throttles,
runs as uid 10001 on a read-only root filesystem, reports healthy, and stops cleanly
on SIGTERM after the drain. The tests of this module share one container, in order;
the last one stops it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from pingpong_toolkit.ports import free_port
from pingpong_toolkit.waiting import wait_until

from .conftest import Docker

pytestmark = pytest.mark.timeout(900)  # the first test also makes the base and app images

LIMIT = 5
DRAIN_SECONDS = 2
GRACE_SECONDS = 20


@dataclass
class Container:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def container(docker: Docker, app_image: str) -> Iterator[Container]:
    port = free_port()
    name = f"pingpong-test-{port}"
    # No bridge network on this daemon (--bridge=none): the container shares the
    # host's network and listens on a free port, loopback only.
    docker(
        "run", "--detach", "--name", name, "--network", "host",
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--health-interval", "2s",
        "--env", "PINGPONG_HOST=127.0.0.1", "--env", f"PINGPONG_PORT={port}",
        "--env", f"PINGPONG_LIMIT={LIMIT}/minute",
        "--env", f"PINGPONG_DRAIN_SECONDS={DRAIN_SECONDS}",
        app_image,
    )  # fmt: skip
    box = Container(name, port)
    try:
        wait_until(lambda: httpx.get(box.url + "/healthz").status_code == 200, 30)
    except TimeoutError:
        logs = docker("logs", name, check=False)
        pytest.fail(f"the container did not start:\n{logs.stdout}{logs.stderr}", pytrace=False)
    yield box
    docker("rm", "--force", name, check=False)


def test_image_metadata(docker: Docker, app_image: str, revision: str) -> None:
    config = docker.inspect(app_image)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/venv/bin/pingpong"]
    assert config["Cmd"] == ["serve"]
    assert "PINGPONG_HOST=0.0.0.0" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.base.name"] == "pingpong/python-base:3.11-bookworm"


def test_no_build_tools_or_secret_in_the_image(docker: Docker, app_image: str) -> None:
    check = (
        "import importlib.util, os, shutil; "
        "assert importlib.util.find_spec('pip') is None, 'pip in the venv'; "
        "found = [t for t in ('gcc', 'cc', 'make', 'git') if shutil.which(t)]; "
        "assert not found, found; "
        "assert not os.path.exists('/run/secrets/ca'); "
        "assert not os.path.exists('/build'), 'the source tree'"
    )
    docker("run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python",
           app_image, "-c", check)  # fmt: skip
    # The final stage's layers: none ran with the secret or set PIP_CERT.
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", app_image).stdout
    assert "PIP_CERT" not in history and "type=secret" not in history


def test_ping_then_429_after_the_limit(container: Container) -> None:
    with httpx.Client(base_url=container.url) as client:
        for _ in range(LIMIT):
            response = client.get("/ping")
            assert response.status_code == 200
            assert response.text == "pong"
        response = client.get("/ping")
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1


def test_healthz_and_version(container: Container, revision: str) -> None:
    assert httpx.get(container.url + "/healthz").status_code == 200
    assert httpx.get(container.url + "/readyz").status_code == 200
    version = httpx.get(container.url + "/version").json()
    assert version["version"] == "0.1.0"
    assert version["commit"] == revision  # PINGPONG_COMMIT, set from the REVISION build arg


def test_runs_as_uid_10001(docker: Docker, container: Container) -> None:
    status = docker("exec", container.name, "cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    gid_line = next(line for line in status.splitlines() if line.startswith("Gid:"))
    assert uid_line.split()[1:] == ["10001"] * 4
    assert gid_line.split()[1:] == ["10001"] * 4
    cmdline = docker("exec", container.name, "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0")[:2] == ["/opt/venv/bin/python3", "/opt/venv/bin/pingpong"]


def test_read_only_root_filesystem(docker: Docker, container: Container) -> None:
    assert docker.inspect(container.name)["HostConfig"]["ReadonlyRootfs"] is True
    touch = docker("exec", container.name, "touch", "/opt/venv/x", check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    # ... and it keeps serving.
    assert httpx.get(container.url + "/healthz").status_code == 200


def test_docker_reports_healthy(docker: Docker, container: Container) -> None:
    def healthy() -> bool:
        return bool(docker.inspect(container.name)["State"]["Health"]["Status"] == "healthy")

    wait_until(healthy, 20, 0.5)


def test_sigterm_drains_then_exits_zero(docker: Docker, container: Container) -> None:
    """`docker stop`: /readyz turns 503 at once, the server keeps answering for the
    drain, then exits 0 well within the grace period (no SIGKILL)."""
    started = time.monotonic()
    stop = subprocess.Popen(
        [docker.cli, "stop", "-t", str(GRACE_SECONDS), container.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: httpx.get(container.url + "/readyz").status_code == 503, 3)
    assert httpx.get(container.url + "/healthz").status_code == 200  # still serving
    _, stderr = stop.communicate(timeout=GRACE_SECONDS + 10)
    elapsed = time.monotonic() - started
    assert stop.returncode == 0, stderr

    state = docker.inspect(container.name)["State"]
    assert state["Running"] is False
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']}"
    assert state["OOMKilled"] is False
    assert DRAIN_SECONDS <= elapsed < GRACE_SECONDS, f"stopped after {elapsed:.1f} s"
    logs = docker("logs", container.name)
    output = logs.stdout + logs.stderr
    assert f"draining for {DRAIN_SECONDS:.1f} s before shutdown" in output
    assert output.rstrip().endswith('"message": "stopped"}')  # a clean, complete shutdown
