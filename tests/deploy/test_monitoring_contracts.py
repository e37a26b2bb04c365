"""Contract tests of monitoring on EKS: what ships to the cluster, pages to
the terraform topic, runbooks and exporters that fit what runs. Each encodes an
upstream project's documented behaviour (cited next to it) on our files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    MONITORING,
    REPO,
    TF,
    actions,
    addon_values,
    blocks,
    find,
    find_all,
    one,
    parse_tf,
    pod_identities,
    policy_docs,
)

KPS = MONITORING / "kube-prometheus-stack"


# -- monitoring in the cluster ---------------------------------------------


def test_monitoring_objects_ship_to_the_cluster(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """kube-prometheus-stack values.yaml: Prometheus selects only objects with
    the release label unless *SelectorNilUsesHelmValues is false, retention
    defaults to 10d on an emptyDir, Alertmanager's default config routes to a
    "null" receiver, Grafana's sidecar loads ConfigMaps labelled
    grafana_dashboard. Prometheus Operator: PrometheusRule, Probe objects."""
    text = run(["kubectl", "kustomize", str(MONITORING)]).stdout
    (tmp_path / "monitoring.yaml").write_text(text)
    docs = [d for d in yaml.safe_load_all(text) if d]
    run(["node", str(REPO / "tools/k8s/validate-crds.mjs"), str(tmp_path / "monitoring.yaml")])
    assert {r["metadata"]["name"] for r in find_all(docs, "PrometheusRule")} == {
        "pingpong-alerts",
        "pingpong-control-alerts",
        "pingpong-slo",
    }
    probe = find(docs, "Probe", "pingpong")
    assert probe["spec"]["jobName"] == "pingpong-probe" and probe["spec"]["module"] == "http_ping"
    dashboards = find(docs, "ConfigMap", "pingpong-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {f.name for f in (MONITORING / "grafana" / "dashboards").glob("*.json")} == set(
        dashboards["data"]
    )
    kps = yaml.safe_load((KPS / "values.yaml").read_text())
    spec = kps["prometheus"]["prometheusSpec"]
    retention = re.fullmatch(r"(\d+)d", spec["retention"])
    assert retention and int(retention.group(1)) >= 35
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    for sel in ("podMonitor", "serviceMonitor", "probe", "rule"):
        assert spec[f"{sel}SelectorNilUsesHelmValues"] is False, sel
    am = yaml.safe_load((KPS / "alertmanager-values.yaml").read_text())["alertmanager"]["config"]
    assert am == yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    assert am["route"]["receiver"] != "null"
    watchdog = [
        r for r in am["route"]["routes"] if 'alertname = "Watchdog"' in r.get("matchers", [])
    ]
    assert watchdog and watchdog[0]["receiver"] == "deadmans-switch"
    assert kps["defaultRules"]["rules"]["general"] is True  # the chart's Watchdog


def test_prometheus_yml_scrapes_a_service_that_exists(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pingpong")
    (sd,) = job["dns_sd_configs"]
    (name,) = sd["names"]
    svc_name, namespace = name.split(".")[:2]
    svc = find(rendered["prod"], "Service", svc_name)
    assert svc["metadata"]["namespace"] == namespace
    assert svc["spec"]["clusterIP"] == "None"  # one A record per pod
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert sd["port"] == ports["metrics"]  # /metrics is on metrics_port only


# -- pages reach SNS -------------------------------------------------------


def test_alertmanager_pages_the_terraform_topic(
    hcl: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Amazon SNS, "Encryption at rest": publishers to a topic encrypted with
    a customer managed key need kms:GenerateDataKey* and kms:Decrypt on it;
    Alertmanager's sns_configs uses the SDK's default credentials (Pod
    Identity for its service account)."""
    am = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    page = next(r for r in am["receivers"] if r["name"] == "pingpong-page")
    (sns,) = page["sns_configs"]
    arn = sns["topic_arn"].split(":")
    # The environment's placeholders (generate.py --render fills them in;
    # test_environment.py renders them); var.name is STACK_NAME in terraform.
    topic = parse_tf(TF / "modules" / "cloudwatch-alarms" / "sns.tf", tmp_path)
    topics = {k: v for r in topic["resource"] for k, v in r.get("aws_sns_topic", {}).items()}
    topic_name = topics["alarms"]["name"]
    assert arn[5] == topic_name.replace("${var.name}", "${STACK_NAME}")
    assert arn[3] == sns["sigv4"]["region"] == "${AWS_REGION}"
    assert arn[4] == "${AWS_ACCOUNT_ID}"
    policy = policy_docs(hcl)["alertmanager"]
    assert {"sns:Publish", "kms:GenerateDataKey*", "kms:Decrypt"} <= actions(policy)
    module = pod_identities(hcl)["alertmanager"]
    kps = yaml.safe_load((KPS / "values.yaml").read_text())
    assert (module["namespace"], module["service_account"]) == (
        "monitoring",
        kps["alertmanager"]["serviceAccount"]["name"],
    )
    assert "alarm_topic_arn" in blocks(hcl, "output")


# -- runbooks for what runs ------------------------------------------------


def test_runbooks_fit_an_hpa_managed_rollout(hcl: dict[str, dict[str, Any]]) -> None:
    """Kubernetes HPA docs: a scale command on an HPA target is undone by the
    HPA. Prod is an Argo Rollout: there is no deploy/pingpong."""
    text = (REPO / "docs" / "runbooks.md").read_text()
    assert "deploy/pingpong" not in text
    assert not re.search(r"kubectl[^\n`]* scale ", text)
    rules = "\n".join(p.read_text() for p in (MONITORING / "prometheus" / "rules").glob("*.yml"))
    urls = set(re.findall(r"runbook_url: (\S+)", rules))
    repo = "${GITHUB_ORG}/${GITHUB_REPO}"  # filled in from deploy/environment
    assert urls and all(
        u.startswith(f"https://github.com/{repo}/blob/main/docs/runbooks.md#") for u in urls
    )
    # The runners register for the organisation (a runner group limits them to
    # this repository's main workflow), from deploy/environment at install.
    guide = (REPO / "docs" / "deploy.md").read_text()
    assert '--set githubConfigUrl="https://github.com/$GITHUB_ORG"' in guide
    assert "githubConfigUrl" not in addon_values("arc-runner-set-values.yaml")
    red = json.loads((MONITORING / "grafana" / "dashboards" / "pingpong-red.json").read_text())
    exprs = [t["expr"] for p in red["panels"] for t in p.get("targets", [])]
    versions = [e for e in exprs if "pingpong_build_info" in e and "count by" in e]
    assert versions and all("rollouts_pod_template_hash" in e and "slot" not in e for e in versions)


# -- ElastiCache -----------------------------------------------------------


def test_elasticache_alarms_and_a_tls_exporter(
    hcl: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """ElastiCache user guide, "Which metrics should I monitor?":
    EngineCPUUtilization, DatabaseMemoryUsagePercentage, Evictions,
    ReplicationLag. redis_exporter README: rediss:// addresses connect with
    TLS; ElastiCache with transit_encryption_mode required refuses plain TCP."""
    parsed = parse_tf(TF / "modules" / "cloudwatch-alarms" / "elasticache.tf", tmp_path)
    metrics = one(one(parsed["locals"])["redis_metrics"])
    assert {m["metric"] for m in metrics.values()} == {
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
        "Evictions",
        "ReplicationLag",
    }
    assert blocks(hcl, "module")["alarms"]["redis_cluster_ids"] == "${local.redis_member_clusters}"
    docs = [d for d in yaml.safe_load_all((KPS / "redis-exporter.yaml").read_text()) if d]
    exporter = find(docs, "Deployment", "redis-exporter")
    env = {e["name"]: e for e in exporter["spec"]["template"]["spec"]["containers"][0]["env"]}
    secret = find(docs, "ExternalSecret", env["REDIS_ADDR"]["valueFrom"]["secretKeyRef"]["name"])
    address = next(d for d in secret["spec"]["data"] if d["secretKey"] == "address")
    assert address["remoteRef"]["property"] == "address"
    assert '"rediss://' in (TF / "secrets.tf").read_text()
    assert "REDIS_PASSWORD" in env and "REDIS_EXPORTER_SKIP_TLS_VERIFICATION" not in env
    monitor = find(docs, "ServiceMonitor", "redis-exporter")
    service = find(docs, "Service", "redis-exporter")
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "redis"
