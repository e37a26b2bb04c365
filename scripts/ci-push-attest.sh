#!/usr/bin/env bash
# Push the built image, sign it, attest its SBOM; print IMAGE_REPO@sha256:DIGEST.
#
#   scripts/ci-push-attest.sh SBOM
#
# The repository's tags are immutable (ECR IMMUTABLE): every tag must be
# written once. So the image tag (the commit) is pushed only if absent, and
# cosign writes exactly two more tags, each once: sha256-<digest>.sig (one
# `cosign sign`) and sha256-<digest>.att (ONE `cosign attest`: cosign 2.x keeps
# all attestations of an image in that one manifest and rewrites it on each
# attest, sigstore/cosign specs/SIGNATURE_SPEC.md and specs/ATTESTATION_SPEC.md;
# the provenance travels inside the SBOM, scripts/ci-sbom.sh). A re-run for the
# same commit verifies and writes nothing.
#
# SIGNER=keyless (GitHub Actions, Sigstore certificate of RELEASE_IDENTITY) or
# key (default: COSIGN_KEY, the KMS key; Jenkins). REGISTRY_INSECURE=true: a
# plain-HTTP registry (the suite's local one).
set -euo pipefail
# shellcheck source=ci-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/ci-env.sh"

sbom=${1:?usage: ci-push-attest.sh SBOM}
docker=${DOCKER:-docker}
target="$IMAGE_REPO:$REVISION"
skopeo_opts=()
cosign_opts=()
if [ "${REGISTRY_INSECURE:-false}" = true ]; then
  skopeo_opts=(--tls-verify=false)
  cosign_opts=(--allow-insecure-registry)
fi
case "${SIGNER:-key}" in
  keyless) identity=(--certificate-identity "$RELEASE_IDENTITY" --certificate-oidc-issuer "$RELEASE_ISSUER"); signer=() ;;
  key) identity=(--key "$COSIGN_KEY"); signer=(--key "$COSIGN_KEY") ;;
  *) echo "SIGNER must be keyless or key, not ${SIGNER}" >&2; exit 2 ;;
esac

if skopeo inspect "${skopeo_opts[@]}" "docker://$target" > /dev/null 2>&1; then
  echo "$target already pushed (tags are immutable)" >&2
else
  "$docker" push "$target" >&2
fi
digest=$(skopeo inspect "${skopeo_opts[@]}" --format '{{.Digest}}' "docker://$target")
ref="$IMAGE_REPO@$digest"

if cosign verify "${cosign_opts[@]}" "${identity[@]}" "$ref" > /dev/null 2>&1; then
  echo "$ref already signed" >&2
else
  cosign sign --yes "${cosign_opts[@]}" "${signer[@]}" "$ref" >&2
fi
if cosign verify-attestation "${cosign_opts[@]}" "${identity[@]}" --type cyclonedx "$ref" > /dev/null 2>&1; then
  echo "$ref already attested" >&2
else
  cosign attest --yes "${cosign_opts[@]}" "${signer[@]}" --type cyclonedx --predicate "$sbom" "$ref" >&2
fi
echo "$ref"
