# pingpong container image. Build, run and the local base image: deploy/docker/README.md.
#
# Needs BuildKit (DOCKER_BUILDKIT=1, or buildx) for the optional CA secret. There is
# deliberately no "# syntax=" line: the Dockerfile frontend built into Docker 20.10+
# understands RUN --mount, and a syntax image could not be pulled where there is no
# registry access.
#
#   DOCKER_BUILDKIT=1 docker build \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     [--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt] -t pingpong:dev .
#
# The base: a Debian bookworm image with Python 3.11 and its venv module, named as
# BASE_IMAGE:BASE_TAG (two arguments, so a tag is always given). Both stages use it, so
# the venv's interpreter path is the same in the final image.
#   python:3.11-slim-bookworm@sha256:…  (default: Docker Hub's official image, pinned by
#                                        digest: the same bytes on every build until
#                                        someone moves the pin on purpose)
#   pingpong/python-base:3.11-bookworm  (made locally by debootstrap + docker import
#                                        where nothing can be pulled; see the README:
#                                        --build-arg BASE_IMAGE=pingpong/python-base
#                                        --build-arg BASE_TAG=3.11-bookworm)
ARG BASE_IMAGE=python
ARG BASE_TAG=3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- builder: a venv with pingpong and its pinned dependencies -----------------------
FROM ${BASE_IMAGE}:${BASE_TAG} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/sh", "-eu", "-c"]
WORKDIR /build
RUN python3 -m venv /opt/venv

# A C compiler and Python's headers for the hot path mypyc compiles (setup.py), in this
# stage only: the final image gets the built venv, no compiler. Debian bookworm's
# current packages: their exact versions change with point releases, and a pinned one
# would vanish from the mirror (the Python packages below are pinned by hash). The
# official python image has its headers; Debian's python3 (the local base) needs
# python3-dev.
# hadolint ignore=DL3008
RUN headers="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; \
    dev=""; if [ ! -f "$headers/Python.h" ]; then dev="python3-dev"; fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends gcc libc6-dev $dev; \
    rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: it is rebuilt only when the lock changes, not
# on every source edit. requirements-image.txt is pyproject.toml's dependencies at the
# versions of constraints.txt, each with the SHA-256 of its wheel
# (scripts/lock-image-requirements.sh): pip refuses any file whose hash differs
# (--require-hashes), and --no-deps installs nothing that is not listed.
COPY requirements-image.txt ./
# The optional secret "ca" is a PEM bundle for HTTPS through a corporate proxy. It is
# mounted for this RUN only (tmpfs under /run/secrets): it never lands in a layer.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements-image.txt

# Then pingpong itself: a regular (not editable) install from the source tree, built
# with the hashed setuptools and mypy above and nothing downloaded; the modules of
# mypyc-modules.txt must come out compiled. The build's own tools (pip, setuptools,
# mypy and what only mypy needs) leave the venv afterwards: the runtime image
# installs nothing.
COPY pyproject.toml setup.py mypyc.ini mypyc-modules.txt README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index .; \
    /opt/venv/bin/pip check; \
    /opt/venv/bin/python -c "import pingpong.core.limiter as m; assert m.__file__.endswith('.so'), m.__file__"; \
    /opt/venv/bin/pingpong --help > /dev/null; \
    /opt/venv/bin/python -m pip uninstall --yes --quiet mypy mypy_extensions pathspec librt ast_serialize; \
    /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools; \
    /opt/venv/bin/pingpong --help > /dev/null

# --- final: the base image, the venv, nothing else -----------------------------------
FROM ${BASE_IMAGE}:${BASE_TAG}

ARG BASE_IMAGE
ARG BASE_TAG
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=""
# The repository URL, e.g. "${{ github.server_url }}/${{ github.repository }}" in CI.
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="pingpong" \
      org.opencontainers.image.description="A throttled ping/pong HTTP service: GCRA rate limiting shared across replicas through Redis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}:${BASE_TAG}"

# An unprivileged user with a fixed uid/gid (10001), so Kubernetes' runAsNonRoot can verify
# it and volume permissions are predictable. It owns nothing in the image.
RUN groupadd --gid 10001 pingpong \
 && useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin pingpong

COPY --from=builder /opt/venv /opt/venv

# PINGPONG_HOST: listen on every interface of the container (the default is loopback).
# PINGPONG_COMMIT: /version and pingpong_build_info report the commit of the build.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PINGPONG_HOST=0.0.0.0 \
    PINGPONG_PORT=8080 \
    PINGPONG_COMMIT=${REVISION}

USER 10001:10001
EXPOSE 8080

# Liveness only (/healthz); orchestrators route traffic by /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PINGPONG_PORT', '8080'), timeout=2)"]

# The server is PID 1 and handles SIGTERM itself: /readyz turns 503, it keeps serving
# for PINGPONG_DRAIN_SECONDS (5), finishes in-flight requests and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/venv/bin/pingpong"]
CMD ["serve"]
