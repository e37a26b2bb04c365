#!/usr/bin/env bash
# Build the image once, tagged with the commit: IMAGE_REPO:REVISION (scripts/ci-env.sh).
# The same command in GitHub Actions, Jenkins and the suite (tests/container).
#
#   scripts/ci-build.sh [docker build options ...]
#
# CA_BUNDLE (optional): a PEM bundle passed as the build secret "ca" (pip
# behind a TLS-inspecting proxy; never lands in a layer). SOURCE_URL: the
# repository URL for the image label. Prints the image name.
set -euo pipefail
# shellcheck source=ci-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/ci-env.sh"

docker=${DOCKER:-docker}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ci_root/pyproject.toml" | head -n 1)
secret=()
[ -z "${CA_BUNDLE:-}" ] || secret=(--secret "id=ca,src=$CA_BUNDLE")

DOCKER_BUILDKIT=1 "$docker" build --progress plain "${secret[@]}" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$REVISION" \
  --build-arg "SOURCE_URL=${SOURCE_URL:-https://github.com/$GITHUB_ORG/$GITHUB_REPO}" \
  -t "$IMAGE_REPO:$REVISION" "$@" "$ci_root" >&2
echo "$IMAGE_REPO:$REVISION"
