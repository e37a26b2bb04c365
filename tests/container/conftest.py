"""A real Docker engine for the container tests: the daemon, the local base image,
the app image. Steps by hand: deploy/docker/README.md.

- dockerd: used when it answers already; otherwise started here (data root under
  /tmp, no default bridge, no iptables) and stopped at the end of the session.
- the base image pingpong/python-base:3.11-bookworm: debootstrap + docker import,
  only when the tag is missing (it stays in the data root between runs).
- the app image: built from the repo's Dockerfile with BuildKit, with the host's CA
  bundle as the build secret "ca" (pip inside the build needs it on machines whose
  HTTPS goes through a custom CA).

A missing tool fails the tests; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pingpong_toolkit.commands import run
from tests import REPO

BASE_IMAGE = "pingpong/python-base"
BASE_TAG = "3.11-bookworm"
# The registry part of the app image's name is never contacted: it stays local.
APP_REGISTRY = "registry.invalid"
DATA_ROOT = Path(tempfile.gettempdir()) / "pingpong-docker"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_MIRROR = os.environ.get("PINGPONG_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def tool(name: str) -> str:
    """A tool on PATH, in sbin or in the repo's .tools-venv; fail when it is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), SBIN, str(REPO / ".tools-venv/bin")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(
            f"{name} is not installed (scripts/install-system-deps.sh, tools/requirements.txt)",
            pytrace=False,
        )
    return path


def docker_cli() -> str:
    # Debian's docker.io client (20.10) builds with BuildKit (DOCKER_BUILDKIT=1); a
    # newer client elsewhere on PATH may lack the buildx plugin it would want for that.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else tool("docker")


class Docker:
    """The docker CLI against the engine of this session."""

    def __init__(self) -> None:
        self.cli = docker_cli()

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run([self.cli, *args], check=check, timeout=timeout, env=env)

    def answers(self) -> bool:
        try:
            version = self("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return version.returncode == 0

    def has_image(self, name: str) -> bool:
        return self("image", "inspect", name, check=False).returncode == 0

    def inspect(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self("inspect", name).stdout)
        return found[0]


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """A Docker engine: the running one, or dockerd started (and stopped) here."""
    client = Docker()
    if client.answers():
        yield client
        return
    dockerd = tool("dockerd")
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    log = DATA_ROOT / "dockerd.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [dockerd, "--data-root", str(DATA_ROOT), "--bridge=none", "--iptables=false",
             "--ip-forward=false"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not client.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"dockerd did not start:\n{log.read_text()[-4000:]}", pytrace=False)
        time.sleep(0.5)
    try:
        yield client
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> str:
    """The local stand-in for python:3.11-slim-bookworm (Debian's Python 3.11)."""
    name = f"{BASE_IMAGE}:{BASE_TAG}"
    if docker.has_image(name):
        return name
    debootstrap = tool("debootstrap")
    with tempfile.TemporaryDirectory(prefix="pingpong-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run([debootstrap, "--variant=minbase", "--include=python3,python3-venv", "bookworm",
             str(rootfs), DEBIAN_MIRROR], timeout=600)  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [docker.cli, "import", "--change", 'CMD ["python3"]', "-", name],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        assert tar.wait() == 0, "tar of the debootstrap tree failed"
        assert imported.returncode == 0, f"docker import failed: {imported.stderr}"
    return name


def git_revision() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=False)  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


@pytest.fixture(scope="session")
def revision() -> str:
    return git_revision()


@pytest.fixture(scope="session")
def app_image(docker: Docker, base_image: str, revision: str) -> str:
    """The app image, built by the pipelines' own build step (scripts/ci-build.sh,
    BuildKit) on the local base, named like CI names it: REGISTRY/NAME:REVISION."""
    env = {
        "DOCKER": docker.cli,
        "REGISTRY": APP_REGISTRY,
        "REVISION": revision,
        "SOURCE_URL": "https://example.invalid/pingpong",
        **({"CA_BUNDLE": str(CA_BUNDLE)} if CA_BUNDLE.exists() else {}),
    }
    built = run(
        [str(REPO / "scripts" / "ci-build.sh"), "--network", "host",
         "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"BASE_TAG={BASE_TAG}"],
        env=env,
        timeout=600,
    ).stdout.strip()  # fmt: skip
    assert built == f"{APP_REGISTRY}/pingpong:{revision}", built
    return built
