"""A local OCI registry (Debian's ``docker-registry``, distribution 2.8) on
loopback, for running the pipelines' push and attest steps for real.

Its filesystem storage keeps, for every tag, one index entry per manifest the
tag ever pointed to (``_manifests/tags/<tag>/index/sha256/<digest>``): a tag
with more than one entry was rewritten, which a repository with immutable tags
(ECR ``IMMUTABLE``) refuses. ``tag_history`` reads that.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST, free_port
from .processes import Process
from .waiting import wait_until

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


@dataclass(frozen=True)
class Registry:
    """A running registry: its address (host:port) and its storage root."""

    address: str
    root: Path

    def get(self, path: str) -> bytes:
        """GET on the registry API; manifests are asked for in the OCI and Docker
        media types (distribution answers 404 for a type the client does not accept)."""
        request = urllib.request.Request(f"http://{self.address}{path}", headers={"Accept": ACCEPT})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            body: bytes = response.read()
        return body

    def tags(self, repository: str) -> list[str]:
        listed = json.loads(self.get(f"/v2/{repository}/tags/list"))
        return sorted(listed.get("tags") or [])

    def tag_history(self, repository: str) -> dict[str, list[str]]:
        """Every tag of ``repository`` and each manifest digest it ever named."""
        tags = self.root / "docker/registry/v2/repositories" / repository / "_manifests/tags"
        return {
            tag.name: sorted(f"sha256:{d.name}" for d in (tag / "index/sha256").iterdir())
            for tag in sorted(tags.iterdir())
        }


@contextmanager
def registry(workdir: Path) -> Iterator[Registry]:
    """``docker-registry serve`` on a free loopback port, storage under ``workdir``."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise FileNotFoundError("docker-registry is not installed (scripts/install-system-deps.sh)")
    port = free_port()
    root = workdir / "storage"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(root)},
                    "delete": {"enabled": True},
                },
                "http": {"addr": f"{HOST}:{port}"},
            }
        )
    )
    process = Process.start(
        "docker-registry", [binary, "serve", str(config)], log=workdir / "registry.log"
    )
    try:
        found = Registry(f"{HOST}:{port}", root)
        wait_until(lambda: found.get("/v2/") is not None, timeout=20)
        yield found
    finally:
        process.stop()
