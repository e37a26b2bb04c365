"""The container files, checked without an engine: hadolint, checkov, compose config."""

from __future__ import annotations

import json
import re

import yaml

from pingpong_toolkit.commands import run
from tests import REPO

from .conftest import tool

DOCKERFILES = [REPO / "Dockerfile", REPO / "deploy/compose/ci-images/Dockerfile"]
COMPOSE = REPO / "compose.yaml"
COMPOSE_CI = REPO / "deploy/compose/compose.ci.yaml"


def test_hadolint_is_clean() -> None:
    # Default failure threshold: any finding, down to "info", fails.
    run([tool("hadolint"), *map(str, DOCKERFILES)])


def test_checkov_dockerfile_is_clean() -> None:
    for dockerfile in DOCKERFILES:
        proc = run(
            [tool("checkov"), "--file", str(dockerfile), "--framework", "dockerfile",
             "--output", "json", "--compact", "--skip-download", "--soft-fail"],
            env={"BC_SKIP_MAPPING": "TRUE"},
            timeout=300,
        )  # fmt: skip
        report = json.loads(proc.stdout)
        summary = report["summary"]
        failed = [c["check_id"] for c in report["results"]["failed_checks"]]
        assert summary["failed"] == 0, f"{dockerfile.name}: failed checks {failed}"
        assert summary["skipped"] == 0, f"{dockerfile.name}: skipped checks"
        assert summary["passed"] > 0


def test_dockerfile_shape() -> None:
    """What hadolint and checkov do not enforce: the final stage runs pingpong from
    the venv as uid 10001, exec form, with a healthcheck and no build secret left."""
    text = (REPO / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM ") :]
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "USER 10001:10001" in final
    assert 'ENTRYPOINT ["/opt/venv/bin/pingpong"]' in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "PINGPONG_HOST=0.0.0.0" in final
    assert "RUN --mount=type=secret" not in final and "PIP_CERT" not in final
    for label in ("title", "version", "revision", "source", "licenses", "created"):
        assert f"org.opencontainers.image.{label}=" in final


def test_compose_config_is_valid() -> None:
    compose = tool("docker-compose")
    run([compose, "-f", str(COMPOSE), "config", "-q"])
    run([compose, "-f", str(COMPOSE), "-f", str(COMPOSE_CI), "config", "-q"])


def test_compose_stack_shape() -> None:
    """Two replicas on one Redis behind the LB, the monitoring stack reading the
    files of deploy/monitoring, and start-up ordered by health."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    replicas = [name for name in services if name.startswith("pingpong-")]
    assert len(replicas) >= 2
    for name in replicas:
        service = services[name]
        assert service["environment"]["PINGPONG_STORAGE"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "healthcheck" in service and "ports" not in service
    assert {services["lb"]["depends_on"][r]["condition"] for r in replicas} == {"service_healthy"}
    mounts = {
        name: " ".join(services[name].get("volumes", []))
        for name in ("prometheus", "alertmanager", "grafana", "blackbox-exporter", "lb")
    }
    assert "./deploy/monitoring/prometheus:/etc/prometheus" in mounts["prometheus"]
    assert "./deploy/monitoring/alertmanager:" in mounts["alertmanager"]
    assert "./deploy/monitoring/grafana/provisioning:/etc/grafana/provisioning" in mounts["grafana"]
    assert "./deploy/monitoring/blackbox:" in mounts["blackbox-exporter"]
    assert "./deploy/compose/haproxy/haproxy.cfg:" in mounts["lb"]
    assert "redis-exporter" in services
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    # Every mounted file or folder exists.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{source} is missing"


def test_haproxy_config_is_valid() -> None:
    # The replica names resolve only inside compose: HAProxy warns and still exits 0.
    run([tool("haproxy"), "-c", "-f", str(REPO / "deploy/compose/haproxy/haproxy.cfg")])


def test_the_build_takes_only_pinned_bytes() -> None:
    """Docker docs, "Image digests": a tag moves, a digest names one image;
    pip's secure installs (pip docs, "Secure installs", --require-hashes):
    every file is checked against a listed hash and --no-deps installs
    nothing unlisted. The lock is constraints.txt's versions, so `make lock`
    and scripts/lock-image-requirements.sh cannot drift apart unnoticed."""
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_TAG=(\S+)$", dockerfile, re.M)
    assert base and re.search(r"@sha256:[0-9a-f]{64}$", base.group(1)), "base image not pinned"
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("--no-deps" in line for line in installs)
    assert any("--require-hashes" in line for line in installs)
    assert all("--require-hashes" in line or "--no-index" in line for line in installs)

    def canonical(name: str) -> str:  # PEP 503
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {
        canonical(line.split("==")[0]): line.split("==")[1]
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    locked = [
        line.split()
        for line in (REPO / "requirements-image.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert locked
    for name_version, hash_option in locked:
        name, version = name_version.split("==")
        assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", hash_option), name
        if name == "setuptools":  # the build backend, pyproject's build-system
            continue
        assert pins[canonical(name)].split(";")[0].strip() == version, (name, version)
