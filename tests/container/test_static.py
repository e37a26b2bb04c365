"""The container files, checked without an engine: hadolint, checkov, compose config."""

from __future__ import annotations

import json

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
