"""Contract tests for production on EKS. Each encodes an upstream project's documented
behaviour (cited next to it) on our files, so that a first release on EKS
does what the files promise. Each failed on these files as they were before
it was written."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    K8S,
    REPO,
    TF,
    blocks,
    find,
    find_all,
    norm,
    one,
    resources,
    workload,
)

MONITORING = REPO / "deploy" / "monitoring"
ADDONS = K8S / "addons"
KPS = MONITORING / "kube-prometheus-stack"
DEPLOY_SH = K8S / "deploy.sh"


def policy_docs(hcl: dict[str, dict[str, Any]]) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for doc in hcl.values():
        for entry in doc.get("data", []):
            docs.update(entry.get("aws_iam_policy_document", {}))
    return docs


def actions(doc: dict[str, Any]) -> set[str]:
    return {a for s in doc["statement"] for a in s["actions"]}


def parse_tf(path: Path, tmp_path: Path) -> dict[str, Any]:
    target = tmp_path / f"{path.stem}.json"
    run(["hcl2tojson", str(path), str(target)])
    parsed: dict[str, Any] = norm(json.loads(target.read_text()))
    return parsed


def values(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ADDONS / name).read_text())
    return loaded


def cpu_millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


# -- target-group gaps -----------------------------------------------------


def test_alb_release_uses_ping_pong_and_verified_target_groups(
    rendered: dict[str, list[dict[str, Any]]], hcl: dict[str, dict[str, Any]]
) -> None:
    """aws-load-balancer-controller docs/deploy/pod_readiness_gate.md: the
    readiness gate is injected by a webhook at pod creation, only for pods an
    Ingress-referenced Service (TargetGroupBinding) selects then.
    argo-rollouts docs/features/traffic-management/alb.md: stable/canary
    Services get their selectors changed after the pods exist, so they never
    get the gate; the remedies are canary.pingPong (requires rootService, see
    pkg/apis/rollouts/validation/validation.go) and --aws-verify-target-group
    with six elasticloadbalancing:Describe* permissions."""
    prod = rendered["prod"]
    canary = workload(prod)["spec"]["strategy"]["canary"]
    ping_pong = canary["pingPong"]
    alb = canary["trafficRouting"]["alb"]
    assert alb["rootService"] and "stableService" not in canary
    for svc in (ping_pong["pingService"], ping_pong["pongService"], alb["rootService"]):
        assert find(prod, "Service", svc)["spec"]["ports"][0]["port"] == alb["servicePort"]
    ns = find(prod, "Namespace", "pingpong")["metadata"]["labels"]
    assert ns["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert (
        "--aws-verify-target-group"
        in values("argo-rollouts-values.yaml")["controller"]["extraArgs"]
    )
    assert actions(policy_docs(hcl)["argo_rollouts"]) == {
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeTargetHealth",
    }
    module = blocks(hcl, "module")["argo_rollouts_pod_identity"]
    sa = values("argo-rollouts-values.yaml")["serviceAccount"]["name"]
    assert (module["namespace"], module["service_account"]) == ("argo-rollouts", sa)
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert "pingPong" in docs and "--aws-verify-target-group" in docs


# -- HPA vs replicas -------------------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-bluegreen"])
def test_no_replica_count_where_an_hpa_owns_it(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Kubernetes docs, "Horizontal Pod Autoscaling / Migrating Deployments
    and StatefulSets to horizontal autoscaling": remove spec.replicas, or
    every apply resets the scaled count. Argo Rollouts' HPA docs say the same
    for Rollouts (features/hpa-support.md)."""
    docs = rendered[overlay]
    wl = workload(docs)
    hpa = find(docs, "HorizontalPodAutoscaler", "pingpong")
    assert hpa["spec"]["scaleTargetRef"]["kind"] == wl["kind"]
    assert "replicas" not in wl["spec"]


# -- deploy.sh: apply order, aborted vs stuck ------------------------------


def fake_kubectl(tmp_path: Path, status: str, refuse: str = "") -> tuple[dict[str, str], Path]:
    """A kubectl on PATH that renders for real, records applies, refuses any
    apply of a file containing `refuse`, and reports `status` for the Rollout."""
    real = run(["sh", "-c", "command -v kubectl"]).stdout.strip()
    log = tmp_path / "calls.log"
    script = tmp_path / "bin" / "kubectl"
    script.parent.mkdir(parents=True)
    script.write_text(
        f"""#!/usr/bin/env bash
set -u
case "$1" in
  kustomize) exec {real} "$@" ;;
  apply)
    files=""; prev=""
    for a in "$@"; do [ "$prev" = "-f" ] && files="$files $a"; prev=$a; done
    kinds=$(cat $files | grep '^kind:' | sort -u | tr '\\n' ' ')
    echo "apply $* :: $kinds" >> {log}
    if [ -n "{refuse}" ] && cat $files | grep -q '^kind: {refuse}$'; then
      echo 'Error from server (Forbidden): {refuse} is forbidden' >&2; exit 1
    fi ;;
  -n) echo '{status}' ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{script.parent}:{os.environ['PATH']}", "ROLLOUT_POLL_SECONDS": "0"}
    return env, log


IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/pingpong:abc"


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        ("2|2|Healthy||8|100|new|new|", 0, "complete"),
        # status.abort: a failed analysis or progressDeadlineAbort; Argo sends
        # all traffic back to stable (argo-rollouts docs/features/specification.md,
        # progressDeadlineAbort).
        ("2|2|Degraded|true|2|0|new|old|RolloutAborted: metric failed", 1, "aborted"),
        # Degraded without abort: ProgressDeadlineExceeded while traffic is split.
        ("2|2|Degraded||4|25|new|old|ProgressDeadlineExceeded", 3, "stuck"),
    ],
)
def test_deploy_script_tells_aborted_from_stuck(
    tmp_path: Path, status: str, code: int, says: str
) -> None:
    env, _ = fake_kubectl(tmp_path, status)
    proc = run([str(DEPLOY_SH), IMAGE], check=False, env=env)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stdout + proc.stderr


def test_deploy_script_timeout_is_stuck(tmp_path: Path) -> None:
    env, _ = fake_kubectl(tmp_path, "2|2|Paused||3|10|new|old|")
    proc = run([str(DEPLOY_SH), IMAGE], check=False, env={**env, "ROLLOUT_TIMEOUT": "0"})
    assert proc.returncode == 3 and "stuck" in proc.stderr


def test_rollouts_abort_on_progress_deadline(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """argo-rollouts docs/features/specification.md: progressDeadlineAbort
    aborts the update when progressDeadlineSeconds passes; without it the
    rollout is only marked degraded, traffic stays split."""
    for overlay in ("prod", "prod-bluegreen"):
        spec = workload(rendered[overlay])["spec"]
        assert spec["progressDeadlineAbort"] is True
        assert spec["progressDeadlineSeconds"] <= 900


def test_a_refused_podmonitor_changes_nothing(tmp_path: Path) -> None:
    """kube-prometheus-stack aggregates no monitoring.coreos.com resources
    into "edit" (only Argo Rollouts does, install.yaml's
    aggregate-to-edit ClusterRole): the PodMonitor apply is refused. A
    server-side dry run (authorized like a real request, Kubernetes API
    concepts "Dry-run") comes first, so nothing is changed; the workload is
    applied last, after what watches it."""
    env, log = fake_kubectl(tmp_path, "2|2|Healthy||8|100|new|new|", refuse="PodMonitor")
    proc = run([str(DEPLOY_SH), IMAGE], check=False, env=env)
    assert proc.returncode == 4, proc.stderr
    calls = log.read_text().splitlines()
    assert calls and all("--dry-run=server" in c for c in calls), calls
    # Unrefused: the workload is the last apply.
    env, log = fake_kubectl(tmp_path / "ok", "2|2|Healthy||8|100|new|new|")
    assert run([str(DEPLOY_SH), IMAGE], env=env).returncode == 0
    calls = log.read_text().splitlines()
    assert "--dry-run=server" in calls[0]
    assert calls[-1].endswith(":: kind: Rollout ")
    assert "PodMonitor" in calls[-2] and "Rollout" not in calls[-2]


def test_deployers_may_write_podmonitors_and_externalsecrets(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    prod = rendered["prod"]
    role = find(prod, "ClusterRole", "pingpong-deployer-extras")
    grants = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    needed = {("monitoring.coreos.com", "podmonitors"), ("external-secrets.io", "externalsecrets")}
    assert needed <= grants
    for rule in role["rules"]:
        assert {"create", "patch", "update", "delete", "get"} <= set(rule["verbs"])
    bindings = [
        b for b in find_all(prod, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert [s["name"] for b in bindings for s in b["subjects"]] == ["pingpong-deployers"]
    for kind in ("PodMonitor", "ExternalSecret", "SecretStore"):
        for obj in find_all(prod, kind):
            api = obj["apiVersion"].split("/")[0]
            assert any(api == g for g, _ in grants), kind


# -- topology spread per version -------------------------------------------


@pytest.mark.parametrize("overlay", ["prod", "prod-bluegreen"])
def test_topology_spread_counts_each_version_alone(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Kubernetes docs, "Pod Topology Spread Constraints": matchLabelKeys adds
    the incoming pod's values of those labels to the selector, so blue's pods
    do not count against green's skew. Argo labels pods
    rollouts-pod-template-hash."""
    spec = workload(rendered[overlay])["spec"]["template"]["spec"]
    for constraint in spec["topologySpreadConstraints"]:
        assert "rollouts-pod-template-hash" in constraint["matchLabelKeys"]


# -- capacity for the surge ------------------------------------------------


def test_capacity_holds_a_release_at_peak(
    rendered: dict[str, list[dict[str, Any]]], hcl: dict[str, dict[str, Any]]
) -> None:
    """setCanaryScale weight 100 runs both versions at full size (Argo
    Rollouts canary docs, "Mimicking Rolling Update"/setCanaryScale), the HPA
    may be at maxReplicas, and DoNotSchedule zone spread needs room in every
    zone: the node group and Karpenter must hold 2 x maxReplicas pods."""
    prod = rendered["prod"]
    hpa_max = find(prod, "HorizontalPodAutoscaler", "pingpong")["spec"]["maxReplicas"]
    container = workload(prod)["spec"]["template"]["spec"]["containers"][0]
    request = cpu_millicores(container["resources"]["requests"]["cpu"])
    variables = {k: v.get("default") for k, v in blocks(hcl, "variable").items()}
    assert variables["pingpong_max_replicas"] == hpa_max
    assert variables["pingpong_cpu_request_millicores"] == request
    per_zone = math.ceil(2 * hpa_max / 3)
    per_node = variables["node_pod_cpu_millicores"] // request
    assert variables["node_max_size"] >= 3 * math.ceil(per_zone / per_node)
    eks = blocks(hcl, "module")["eks"]
    assert one(eks["eks_managed_node_groups"])["default"]["max_size"] == "${local.node_max_size}"
    karpenter = blocks(hcl, "module")["karpenter"]
    assert karpenter["source"] == "terraform-aws-modules/eks/aws//modules/karpenter"
    pools = list(yaml.safe_load_all((ADDONS / "karpenter" / "nodepool.yaml").read_text()))
    pool = next(d for d in pools if d["kind"] == "NodePool")
    assert cpu_millicores(pool["spec"]["limits"]["cpu"]) >= 2 * hpa_max * request
    node_class = next(d for d in pools if d["kind"] == "EC2NodeClass")
    assert node_class["spec"]["role"] == karpenter["node_iam_role_name"].replace(
        "${var.name}", "pingpong"
    )
    run(
        [
            "node",
            str(REPO / "tools/k8s/validate-crds.mjs"),
            str(ADDONS / "karpenter" / "nodepool.yaml"),
        ]
    )


# -- NetworkPolicy ports ---------------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-bluegreen"])
def test_service_ports_equal_container_ports(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """amazon-vpc-cni / aws-network-policy-agent (EKS user guide, "Restrict
    Pod network traffic with Kubernetes network policies", considerations):
    for traffic to a Service, the agent matches the policy's port against
    the Service port; keep Service and container ports equal."""
    docs = rendered[overlay]
    ports = {
        p["name"]: p["containerPort"]
        for p in workload(docs)["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    for svc in find_all(docs, "Service"):
        if svc["spec"]["selector"].get("app.kubernetes.io/name") != "pingpong":
            continue
        for port in svc["spec"]["ports"]:
            assert port["port"] == ports[port["targetPort"]], svc["metadata"]["name"]
    smoke = find(docs, "NetworkPolicy", "smoke-test")
    allowed = {p["port"] for rule in smoke["spec"]["egress"] for p in rule.get("ports", [])}
    assert ports["http"] in allowed


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
        p.stem for p in (MONITORING / "prometheus" / "rules").glob("*.yml")
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
    variables = {k: v.get("default") for k, v in blocks(hcl, "variable").items()}
    topic = parse_tf(TF / "modules" / "cloudwatch-alarms" / "sns.tf", tmp_path)
    topics = {k: v for r in topic["resource"] for k, v in r.get("aws_sns_topic", {}).items()}
    topic_name = topics["alarms"]["name"]
    assert arn[5] == topic_name.replace("${var.name}", variables["name"])
    assert arn[3] == sns["sigv4"]["region"] == variables["region"]
    policy = policy_docs(hcl)["alertmanager"]
    assert {"sns:Publish", "kms:GenerateDataKey*", "kms:Decrypt"} <= actions(policy)
    module = blocks(hcl, "module")["alertmanager_pod_identity"]
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
    repo = next(
        line.split('"')[1]
        for line in (TF / "terraform.tfvars.example").read_text().splitlines()
        if line.startswith("github_repo")
    )
    assert urls and all(
        u.startswith(f"https://github.com/{repo}/blob/main/docs/runbooks.md#") for u in urls
    )
    assert values("arc-runner-set-values.yaml")["githubConfigUrl"] == f"https://github.com/{repo}"
    red = json.loads((MONITORING / "grafana" / "dashboards" / "pingpong-red.json").read_text())
    exprs = [t["expr"] for p in red["panels"] for t in p.get("targets", [])]
    versions = [e for e in exprs if "pingpong_build_info" in e and "count by" in e]
    assert versions and all("rollouts_pod_template_hash" in e and "slot" not in e for e in versions)


# -- first apply -----------------------------------------------------------


def test_alb_alarms_wait_for_the_alb(tmp_path: Path) -> None:
    """CloudWatch PutMetricAlarm: a dimension value must be 1-1024
    characters; the ALB suffixes are empty until the first deploy, so the ALB
    alarms must not exist then."""
    module = TF / "modules" / "cloudwatch-alarms"
    alb = parse_tf(module / "alb.tf", tmp_path)
    alarms = {
        k: v for entry in alb["resource"] for k, v in entry["aws_cloudwatch_metric_alarm"].items()
    }
    assert set(alarms) == {"alb_5xx_ratio", "alb_p99_latency", "alb_healthy_hosts"}
    for name, alarm in alarms.items():
        assert alarm.get("count") == "${local.alb_count}", name
    local = one(alb["locals"])
    assert 'var.alb_arn_suffix != ""' in local["alb_known"]
    assert "not created" in (REPO / "docs" / "deploy.md").read_text()


# -- CD reaches the API ----------------------------------------------------


def test_deploy_runs_where_the_api_is_reachable(hcl: dict[str, dict[str, Any]]) -> None:
    """EKS user guide, "Cluster API server endpoint": with public access
    limited to CIDRs, other clients must come through the private endpoint
    from inside the VPC. GitHub-hosted runners have no fixed addresses, so
    the deploy job runs on a runner scale set (actions-runner-controller,
    runs-on: <runnerScaleSetName>) in the cluster."""
    main = yaml.safe_load((REPO / ".github" / "workflows" / "main.yaml").read_text())
    runner = values("arc-runner-set-values.yaml")["runnerScaleSetName"]
    assert main["jobs"]["deploy"]["runs-on"] == runner
    assert blocks(hcl, "module")["eks"]["endpoint_private_access"] is True
    jenkins = (REPO / "Jenkinsfile").read_text()
    deploy_stage = jenkins[jenkins.index("stage('Deploy (Argo Rollout)')") :]
    assert "agent { label 'pingpong-deploy' }" in deploy_stage


# -- push and deploy roles -------------------------------------------------


def test_push_and_deploy_roles_are_split(hcl: dict[str, dict[str, Any]]) -> None:
    """GitHub docs, "About security hardening with OpenID Connect": a job
    that references an environment gets sub
    repo:ORG/REPO:environment:NAME; any other job on main gets
    repo:ORG/REPO:ref:refs/heads/main. Trusting the ref lets any job on main
    skip the environment's required reviewers."""
    docs = policy_docs(hcl)

    def subjects(name: str) -> list[str]:
        statement = one(docs[name]["statement"])
        cond = {c["variable"]: c for c in statement["condition"]}
        sub = cond["token.actions.githubusercontent.com:sub"]
        assert sub["test"] == "StringEquals"
        return list(sub["values"])

    assert subjects("ci_deploy_trust") == [
        "repo:${var.github_repo}:environment:${var.github_deploy_environment}"
    ]
    assert subjects("ci_push_trust") == ["repo:${var.github_repo}:ref:refs/heads/main"]
    assert not any(a.startswith("ecr:") for a in actions(docs["ci_deploy"]))
    assert not any(a.startswith("eks:") for a in actions(docs["ci_push"]))
    eks = blocks(hcl, "module")["eks"]
    entries = one(eks["access_entries"])
    assert [e["principal_arn"] for e in entries.values()] == ["${aws_iam_role.ci_deploy.arn}"]
    roles = resources(hcl, "aws_iam_role")
    assert (
        roles["ci_deploy"]["assume_role_policy"]
        == "${data.aws_iam_policy_document.ci_deploy_trust.json}"
    )


# -- secrets ---------------------------------------------------------------


def test_redis_url_comes_from_secrets_manager(
    rendered: dict[str, list[dict[str, Any]]], hcl: dict[str, dict[str, Any]]
) -> None:
    """External Secrets Operator, AWS Secrets Manager provider: an
    ExternalSecret's remoteRef.key/property select the secret and JSON key;
    the target Secret is created and refreshed every refreshInterval."""
    for overlay in ("prod", "prod-bluegreen"):
        docs = rendered[overlay]
        env = next(
            e
            for e in workload(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
            if e["name"] == "PINGPONG_STORAGE"
        )
        ref = env["valueFrom"]["secretKeyRef"]
        es = find(docs, "ExternalSecret", ref["name"])
        assert es["spec"]["target"]["name"] == ref["name"]
        (data,) = [d for d in es["spec"]["data"] if d["secretKey"] == ref["key"]]
        secret = resources(hcl, "aws_secretsmanager_secret")["redis"]
        assert data["remoteRef"]["key"] == secret["name"].replace("${var.name}", "pingpong")
        assert data["remoteRef"]["property"] == "url"
        assert es["spec"]["refreshInterval"]
        find(docs, "SecretStore", es["spec"]["secretStoreRef"]["name"])
    assert "redis_auth_token" not in blocks(hcl, "output")
    password = resources(hcl, "random_password")["redis_auth"]
    assert "var.redis_auth_token_version" in json.dumps(password["keepers"])
    (redis,) = resources(hcl, "aws_elasticache_replication_group").values()
    assert redis["auth_token_update_strategy"] == "ROTATE"  # noqa: S105 - a strategy, not a secret
    assert {"secretsmanager:GetSecretValue", "kms:Decrypt"} <= actions(
        policy_docs(hcl)["external_secrets"]
    )
    assert "Rotating the Redis auth token" in (REPO / "docs" / "deploy.md").read_text()


# -- supply chain ----------------------------------------------------------


def test_images_are_signed_with_an_sbom_and_admission_checks_it() -> None:
    """Kyverno verifyImages (kyverno.io/docs/writing-policies/verify-images/
    sigstore): validationFailureAction Enforce refuses pods whose image lacks
    a signature or attestation from the listed attestors. podinfo and the Argo
    projects sign with cosign and attach a CycloneDX/SPDX SBOM per image."""
    main = (REPO / ".github" / "workflows" / "main.yaml").read_text()
    for needed in ("format: cyclonedx", "cosign sign", "--type cyclonedx", "--type slsaprovenance"):
        assert needed in main, needed
    jenkins = (REPO / "Jenkinsfile").read_text()
    for needed in (
        "--format cyclonedx",
        "cosign sign",
        "--type cyclonedx",
        "--type slsaprovenance",
    ):
        assert needed in jenkins, needed
    policy = yaml.safe_load((K8S / "policies" / "verify-images.yaml").read_text())
    assert policy["kind"] == "Policy" and policy["metadata"]["namespace"] == "pingpong"
    assert policy["spec"]["validationFailureAction"] == "Enforce"
    (rule,) = policy["spec"]["rules"]
    assert rule["match"]["any"][0]["resources"]["kinds"] == ["Pod"]
    (verify,) = rule["verifyImages"]
    assert verify["required"] is True and verify["verifyDigest"] is True
    keyless = verify["attestors"][0]["entries"][0]["keyless"]
    assert keyless["issuer"] == "https://token.actions.githubusercontent.com"
    assert keyless["subject"].endswith("/.github/workflows/main.yaml@refs/heads/main")
    assert [a["type"] for a in verify["attestations"]] == ["https://cyclonedx.org/bom"]


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
