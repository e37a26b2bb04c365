"""The pipelines' release steps (scripts/ci-build.sh, ci-sbom.sh, ci-push-attest.sh,
the same scripts GitHub Actions and Jenkins run) against a real local OCI
registry: the image built by the suite, a CycloneDX SBOM of what it holds, the
push, the signature and the attestation, twice (a re-run of the same commit).

ECR's IMMUTABLE repositories refuse to write a tag that exists ("Image tag
mutability", AWS ECR user guide: ImageTagAlreadyExistsException). cosign 2.x
keeps all attestations of an image under one tag, sha256-<digest>.att, and
rewrites it on each attest (sigstore/cosign specs/ATTESTATION_SPEC.md: one
manifest, one layer per attestation; specs/SIGNATURE_SPEC.md: the tag). So
the check is on the registry's own record of every manifest each tag ever
named: exactly one per tag. cosign itself cannot be installed here; the
stand-in (cosign_model.py) makes cosign's registry writes and nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pingpong_toolkit.commands import run
from pingpong_toolkit.registry import Registry, registry
from tests import REPO

from .conftest import Docker

SCRIPTS = REPO / "scripts"


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    with registry(tmp_path / "registry") as found:
        yield found


def cosign_on_path(bin_dir: Path) -> str:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "cosign"
    model = Path(__file__).with_name("cosign_model.py")
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} {model} "$@"\n')
    shim.chmod(0o755)
    return str(bin_dir)


def release_env(docker: Docker, reg: Registry, bin_dir: Path, revision: str) -> dict[str, str]:
    return {
        "DOCKER": docker.cli,
        "REGISTRY": reg.address,
        "REGISTRY_INSECURE": "true",
        "REVISION": revision,
        "PATH": f"{cosign_on_path(bin_dir)}:{REPO / '.tools-venv/bin'}:{os.environ['PATH']}",
    }


def test_sbom_lists_what_the_image_runs_with_its_provenance(
    docker: Docker, app_image: str, revision: str, tmp_path: Path
) -> None:
    """CycloneDX 1.x JSON: metadata.component is what the BOM describes,
    externalReferences type vcs / build-system its source and build."""
    out = tmp_path / "sbom.cdx.json"
    env = {"DOCKER": docker.cli, "REVISION": revision, "BUILD_URL": "https://ci.invalid/run/7",
           "PATH": f"{REPO / '.tools-venv/bin'}:{os.environ['PATH']}"}  # fmt: skip
    run([str(SCRIPTS / "ci-sbom.sh"), app_image, str(out)], env=env, timeout=300)
    bom: dict[str, Any] = json.loads(out.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    names = {c["name"].lower() for c in bom["components"]}
    # The service and what it cannot run without, as installed in the image.
    assert {"pingpong", "granian", "redis", "pydantic"} <= names, sorted(names)
    component = bom["metadata"]["component"]
    assert component["version"] == revision
    refs = {r["type"]: r["url"] for r in component["externalReferences"]}
    assert refs["build-system"] == "https://ci.invalid/run/7" and refs["vcs"]


def test_push_sign_attest_write_each_tag_once(
    docker: Docker, app_image: str, revision: str, local_registry: Registry, tmp_path: Path
) -> None:
    env = release_env(docker, local_registry, tmp_path / "bin", revision)
    target = f"{local_registry.address}/pingpong:{revision}"
    docker("tag", app_image, target)
    sbom = tmp_path / "sbom.cdx.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}))
    push = [str(SCRIPTS / "ci-push-attest.sh"), str(sbom)]
    first = run(push, env=env, timeout=300)
    ref = first.stdout.strip()
    repo, digest = ref.split("@")
    assert repo == f"{local_registry.address}/pingpong" and digest.startswith("sha256:")
    stem = digest.replace(":", "-")
    history = local_registry.tag_history("pingpong")
    assert set(history) == {revision, f"{stem}.sig", f"{stem}.att"}
    assert history[revision] == [digest]
    rewritten = {tag: seen for tag, seen in history.items() if len(seen) != 1}
    assert not rewritten, (
        f"tags written more than once (an IMMUTABLE repository refuses): {rewritten}"
    )
    attestations = json.loads(local_registry.get(f"/v2/pingpong/manifests/{stem}.att"))
    types = [layer["annotations"]["predicateType"] for layer in attestations["layers"]]
    assert types == ["https://cyclonedx.org/bom"]
    # A re-run for the same commit (a retried pipeline) writes nothing.
    again = run(push, env=env, timeout=300)
    assert again.stdout.strip() == ref
    assert "already pushed" in again.stderr and "already attested" in again.stderr
    assert local_registry.tag_history("pingpong") == history
