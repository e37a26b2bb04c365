"""Alert metadata, runbook links, and the Alertmanager configuration."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from pingpong_toolkit.commands import run
from pingpong_toolkit.ports import free_port

from . import helpers as mh

ALERTS = mh.alert_rules()


def test_there_are_alerts() -> None:
    names = {r["alert"] for r in ALERTS}
    assert len(names) == len(ALERTS), "duplicate alert names"
    assert {
        "PingpongErrorBudgetBurnFast",
        "PingpongErrorBudgetBurnMedium",
        "PingpongErrorBudgetBurnSlow",
        "PingpongLatencyBudgetBurnFast",
        "PingpongTargetsDown",
        "PingpongReplicasLow",
        "PingpongStorageErrorRate",
        "PingpongStorageCircuitOpen",
        "PingpongThrottlingUnusual",
    } <= names


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule.get("labels", {}).get("severity") in {"page", "ticket"}
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{rule['alert']} has no {key}"
    url = urlparse(annotations["runbook_url"])
    assert url.scheme == "https"
    assert url.path.endswith("/docs/runbooks.md"), url.path
    assert url.fragment in mh.runbook_anchors(), (
        f"{rule['alert']}: no section #{url.fragment} in docs/runbooks.md"
    )


def test_every_alert_has_its_own_runbook_section() -> None:
    fragments = [urlparse(r["annotations"]["runbook_url"]).fragment for r in ALERTS]
    assert len(set(fragments)) == len(fragments)
    for rule in ALERTS:
        assert urlparse(rule["annotations"]["runbook_url"]).fragment == rule["alert"].lower()


def test_cloudwatch_alarm_runbook_links_exist() -> None:
    text = "\n".join(p.read_text() for p in mh.CLOUDWATCH_MODULE.glob("*.tf"))
    anchors = re.findall(r"docs/runbooks\.md#([\w-]+)", text)
    assert len(anchors) >= 4
    missing = set(anchors) - mh.runbook_anchors()
    assert not missing, f"CloudWatch alarm runbook links without a section: {missing}"


def test_runbook_sections_have_meaning_impact_diagnosis_mitigation() -> None:
    sections = re.split(r"^## ", mh.RUNBOOKS.read_text(), flags=re.MULTILINE)[1:]
    assert sections
    for section in sections:
        title = section.splitlines()[0]
        for part in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**"):
            assert part in section, f"runbook section {title!r} lacks {part}"


# --- Alertmanager -----------------------------------------------------------


def test_amtool_check_config() -> None:
    result = run([mh.AMTOOL, "check-config", str(mh.ALERTMANAGER_CONFIG)])
    assert "SUCCESS" in result.stdout


def test_amtool_rejects_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text("route:\n  receiver: nowhere\nreceivers:\n  - name: somewhere\n")
    assert run([mh.AMTOOL, "check-config", str(broken)], check=False).returncode != 0


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert_routes_to_the_receiver_of_its_severity(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], "job": "pingpong", **rule["labels"]}
    result = run(
        [
            mh.AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={mh.ALERTMANAGER_CONFIG}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )
    expected = {"page": "pingpong-page", "ticket": "pingpong-ticket"}[labels["severity"]]
    assert result.stdout.strip() == expected


def route(labels: dict[str, str]) -> str:
    """The receiver amtool picks for an alert with these labels."""
    argv = [mh.AMTOOL, "config", "routes", "test", f"--config.file={mh.ALERTMANAGER_CONFIG}"]
    return run([*argv, *(f"{k}={v}" for k, v in labels.items())]).stdout.strip()


def chart_alerts() -> list[tuple[str, str]]:
    listed = yaml.safe_load((mh.KPS / "chart-default-alerts.yaml").read_text())
    return [(name, sev) for sev, names in listed["alerts"].items() for name in names]


CHART_RECEIVER = {
    "critical": "pingpong-page",
    "warning": "pingpong-ticket",
    "info": "pingpong-ticket",
}
SPECIAL = {"Watchdog": "deadmans-switch", "InfoInhibitor": "null"}


def test_the_chart_alerts_listed_are_those_of_the_chart_installed() -> None:
    listed = yaml.safe_load((mh.KPS / "chart-default-alerts.yaml").read_text())
    command = mh.helm_command("kube-prometheus-stack")
    version = command[command.index("--version") + 1]
    assert mh.chart_version(version) == listed["version"]
    assert len(chart_alerts()) > 100 and {"KubePodCrashLooping", "Watchdog"} <= {
        n for n, _ in chart_alerts()
    }


@pytest.mark.parametrize(("alert", "severity"), chart_alerts(), ids=lambda v: str(v))
def test_every_chart_alert_reaches_a_receiver_that_exists(alert: str, severity: str) -> None:
    """kube-prometheus-stack's default rules label severity critical, warning,
    info or none (Watchdog, InfoInhibitor); critical pages."""
    labels = {"alertname": alert, "severity": severity, "namespace": "kube-system"}
    expected = SPECIAL.get(alert) or CHART_RECEIVER[severity]
    assert route(labels) == expected


def topic_names() -> set[str]:
    """SNS topics the CloudWatch module creates, named with the placeholder
    alertmanager.yml uses for terraform's var.name (STACK_NAME)."""
    text = "\n".join(p.read_text() for p in mh.CLOUDWATCH_MODULE.glob("*.tf"))
    names = re.findall(
        r'resource "aws_sns_topic" "\w+" \{\n\s*name\s*=\s*"\$\{var.name\}-([\w-]+)"', text
    )
    return {f"${{STACK_NAME}}-{n}" for n in names}


def test_every_receiver_resolves() -> None:
    """No receiver may name a Service that is not deployed: each publishes to
    an SNS topic that terraform creates (Alertmanager docs, configuration,
    <sns_config>: topic_arn, sigv4; credentials from the environment: EKS Pod
    Identity), or is the explicit "null" receiver with no integration."""
    config = yaml.safe_load(mh.ALERTMANAGER_CONFIG.read_text())
    topics = topic_names()
    expected = {f"${{STACK_NAME}}-{n}" for n in ("alarms", "tickets", "heartbeat")}
    assert expected <= topics
    used = set()
    for receiver in config["receivers"]:
        integrations = {k for k in receiver if k.endswith("_configs")}
        if receiver["name"] == "null":
            assert not integrations
            continue
        assert integrations == {"sns_configs"}, receiver["name"]
        for sns in receiver["sns_configs"]:
            topic = sns["topic_arn"].rsplit(":", 1)[1]
            assert topic in topics, f"{receiver['name']}: no SNS topic {topic} in terraform"
            used.add(topic)
    assert used == expected


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager with our config on a free loopback port; its base URL.
    Its notifications fail (no SNS, no ticket bridge here); routing and
    inhibition do not depend on them."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("alertmanager")
    argv = [
        mh.ALERTMANAGER,
        f"--config.file={mh.ALERTMANAGER_CONFIG}",
        f"--storage.path={workdir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    base = f"http://127.0.0.1:{port}"
    with mh.serving("alertmanager", argv, f"{base}/-/ready", workdir):
        yield base


def _api(base: str, path: str, payload: object = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback URL built here)
        body = resp.read()
    return json.loads(body) if body else None


def test_inhibition_in_a_running_alertmanager(alertmanager: str) -> None:
    """A page inhibits the ticket of the same SLO, and nothing else."""
    alerts = [
        ("PingpongErrorBudgetBurnFast", "page", {"slo": "availability"}),
        ("PingpongErrorBudgetBurnSlow", "ticket", {"slo": "availability"}),
        ("PingpongLatencyBudgetBurnSlow", "ticket", {"slo": "latency"}),
        ("PingpongStorageCircuitOpen", "page", {"storage": "redis"}),
        ("PingpongStorageErrorRate", "ticket", {"storage": "redis"}),
        ("PingpongReplicasLow", "ticket", {}),
    ]
    _api(
        alertmanager,
        "/api/v2/alerts",
        [
            {"labels": {"alertname": name, "job": "pingpong", "severity": sev, **extra}}
            for name, sev, extra in alerts
        ],
    )
    state = {a["labels"]["alertname"]: a for a in _api(alertmanager, "/api/v2/alerts")}
    inhibited = {name for name, a in state.items() if a["status"]["inhibitedBy"]}
    assert inhibited == {"PingpongErrorBudgetBurnSlow", "PingpongStorageErrorRate"}
    for name, severity, _ in alerts:
        receivers = {r["name"] for r in state[name]["receivers"]}
        assert receivers == {f"pingpong-{severity}"}, (name, receivers)
