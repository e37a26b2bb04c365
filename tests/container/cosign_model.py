"""A stand-in for cosign 2.x where cosign cannot be installed (no registry
here ships it): it writes to the registry what cosign writes, nothing else, so
the pipelines' push-and-attest sequence can run against a real local registry.

cosign's storage, as its specs describe it (sigstore/cosign
specs/SIGNATURE_SPEC.md, specs/ATTESTATION_SPEC.md): the signatures of image
``sha256:<hex>`` live in one OCI manifest tagged ``sha256-<hex>.sig``, its
attestations in one tagged ``sha256-<hex>.att``, each signature or attestation
one layer. ``cosign sign`` / ``cosign attest`` read that manifest, append a
layer and push it again under the same tag: a second attest REWRITES the tag.
``verify`` / ``verify-attestation --type T`` succeed when the tag holds a
layer (of predicate type T). Signing itself is not modelled (no keys, no
Rekor): only the registry writes, which is what an immutable repository judges.

    python3 cosign_model.py sign|attest|verify|verify-attestation [flags] REGISTRY/REPO@sha256:HEX
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PREDICATE_TYPES = {
    "cyclonedx": "https://cyclonedx.org/bom",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
}
VALUE_FLAGS = {
    "--key",
    "--type",
    "--predicate",
    "--certificate-identity",
    "--certificate-oidc-issuer",
}


def request(
    method: str, url: str, body: bytes = b"", content_type: str = ""
) -> tuple[int, bytes, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    headers["Accept"] = OCI_MANIFEST
    req = urllib.request.Request(url, data=body or None, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read(), response.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), ""


def push_blob(base: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, _, location = request("POST", f"{base}/blobs/uploads/")
    joiner = "&" if "?" in location else "?"
    url = location if location.startswith("http") else base.split("/v2/")[0] + location
    status, body, _ = request(
        "PUT", f"{url}{joiner}digest={digest}", data, "application/octet-stream"
    )
    assert status == 201, (status, body)
    return {"digest": digest, "size": len(data)}


def read_manifest(base: str, tag: str) -> dict[str, Any] | None:
    status, body, _ = request("GET", f"{base}/manifests/{tag}")
    if status == 404:
        return None
    assert status == 200, (status, body)
    found: dict[str, Any] = json.loads(body)
    return found


def append_layer(
    base: str, tag: str, payload: bytes, media_type: str, annotations: dict[str, str]
) -> None:
    """cosign's read-modify-write of the .sig/.att manifest under ``tag``."""
    manifest = read_manifest(base, tag) or {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **push_blob(base, b"{}"),
        },
        "layers": [],
    }
    manifest["layers"].append(
        {"mediaType": media_type, **push_blob(base, payload), "annotations": annotations}
    )
    status, body, _ = request(
        "PUT", f"{base}/manifests/{tag}", json.dumps(manifest).encode(), OCI_MANIFEST
    )
    if status != 201:
        sys.exit(f"cosign: PUT {tag}: {status} {body[:200]!r}")


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    flags: dict[str, str] = {}
    positional: list[str] = []
    it = iter(rest)
    for arg in it:
        if arg in VALUE_FLAGS:
            flags[arg] = next(it)
        elif not arg.startswith("-"):
            positional.append(arg)
    (ref,) = positional
    repo, digest = ref.split("@")
    registry, name = repo.split("/", 1)
    base = f"http://{registry}/v2/{name}"
    stem = digest.replace(":", "-")
    predicate_type = PREDICATE_TYPES.get(flags.get("--type", ""), flags.get("--type", ""))
    if command == "sign":
        payload = json.dumps({"critical": {"image": {"docker-manifest-digest": digest}}}).encode()
        append_layer(
            base, f"{stem}.sig", payload, "application/vnd.dev.cosign.simplesigning.v1+json", {}
        )
        return 0
    if command == "attest":
        with open(flags["--predicate"], "rb") as predicate:
            statement = {"predicateType": predicate_type, "predicate": json.load(predicate)}
        envelope = json.dumps(statement).encode()
        dsse = "application/vnd.dsse.envelope.v1+json"
        append_layer(base, f"{stem}.att", envelope, dsse, {"predicateType": predicate_type})
        return 0
    if command == "verify":
        return 0 if read_manifest(base, f"{stem}.sig") else 1
    if command == "verify-attestation":
        found = read_manifest(base, f"{stem}.att") or {"layers": []}
        types = [layer.get("annotations", {}).get("predicateType") for layer in found["layers"]]
        return 0 if predicate_type in types else 1
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
