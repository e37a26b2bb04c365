#!/usr/bin/env bash
# The CycloneDX SBOM of a built image, with its build provenance in the
# metadata, written to OUT (default sbom.cdx.json).
#
#   scripts/ci-sbom.sh IMAGE [OUT]
#
# The component list is what the image's own interpreter reports installed
# (importlib.metadata in /opt/venv), turned into CycloneDX by cyclonedx-py
# (PyPI cyclonedx-bom). The provenance (source, revision, builder, build URL)
# goes into the same document, so one attestation carries both: cosign keeps
# every attestation of an image under ONE tag, sha256-<digest>.att, and a
# second `cosign attest` rewrites it, which an IMMUTABLE repository refuses
# (scripts/ci-push-attest.sh).
set -euo pipefail
# shellcheck source=ci-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/ci-env.sh"

image=${1:?usage: ci-sbom.sh IMAGE [OUT]}
out=${2:-sbom.cdx.json}
docker=${DOCKER:-docker}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$docker" run --rm --network none --entrypoint /opt/venv/bin/python "$image" -c \
  'import importlib.metadata as m; print("\n".join(sorted({d.metadata["Name"] + "==" + d.version for d in m.distributions()})))' \
  > "$work/installed.txt"
cyclonedx-py requirements --output-format JSON --outfile "$work/bom.json" "$work/installed.txt" >&2

BOM="$work/bom.json" OUT="$out" IMAGE="$image" python3 - <<'PY'
import json, os

bom = json.load(open(os.environ["BOM"]))
env = os.environ
source = env.get("SOURCE_URL") or f"https://github.com/{env['GITHUB_ORG']}/{env['GITHUB_REPO']}"
build = env.get("BUILD_URL") or "local"
meta = bom.setdefault("metadata", {})
meta["component"] = {"type": "container", "name": env["IMAGE"], "version": env["REVISION"]}
meta.setdefault("properties", []).extend(
    [{"name": "pingpong:revision", "value": env["REVISION"]},
     {"name": "pingpong:builder", "value": env.get("BUILDER", "local")}]
)
meta["component"]["externalReferences"] = [
    {"type": "vcs", "url": source},
    {"type": "build-system", "url": build},
]
json.dump(bom, open(env["OUT"], "w"), indent=1)
PY
echo "$out"
