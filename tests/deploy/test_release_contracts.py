"""Contract tests of a release on EKS: ALB target groups, the HPA, deploy.sh's
apply order and outcomes, spread and capacity, analysis at low traffic. Each
encodes an upstream project's documented behaviour (cited next to it) on our
files; each failed on the files as they were before it was written."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    ADDONS,
    K8S,
    REPO,
    actions,
    addon_values,
    blocks,
    captured,
    cpu_millicores,
    ecr_image,
    find,
    find_all,
    one,
    pod_identities,
    policy_docs,
    terraform_name,
    workload,
)

DEPLOY_SH = K8S / "deploy.sh"
NUMBERS = {"four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


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
        in addon_values("argo-rollouts-values.yaml")["controller"]["extraArgs"]
    )
    # The terraform policy is the one list: read-only ELB calls, as many as
    # the add-on's README promises (argo-rollouts alb.md lists six Describe*).
    granted = actions(policy_docs(hcl)["argo_rollouts"])
    assert granted and all(a.startswith("elasticloadbalancing:Describe") for a in granted)
    promised = captured(
        r"(\w+)\s+`elasticloadbalancing:Describe\*`", (K8S / "README.md").read_text()
    )
    assert len(granted) == NUMBERS[promised], (promised, sorted(granted))
    module = pod_identities(hcl)["argo-rollouts"]
    sa = addon_values("argo-rollouts-values.yaml")["serviceAccount"]["name"]
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


IMAGE = ecr_image("abc")


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


def test_deployers_may_apply_what_deploy_sh_applies_and_no_more(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Kubernetes RBAC docs, "User-facing roles": the built-in edit role
    reads Secrets and grants pods/exec, pods/attach and pods/portforward
    (a shell in a pod, the admin port from CI). The deploy role gets a Role
    with the kinds deploy.sh applies (every non-bootstrap object of every
    overlay) and read access to what it follows."""
    for overlay, docs in rendered.items():
        role = find(docs, "Role", "pingpong-deployer")
        grants = {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }
        applied = {
            (d["apiVersion"].rpartition("/")[0], d["kind"].lower() + "s")
            for d in docs
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "bootstrap"
        }
        applied = {(g, "ingresses" if r == "ingresss" else r.replace("policys", "policies"))
                   for g, r in applied}  # fmt: skip
        for group, resource in applied:
            for verb in ("get", "create", "patch"):
                assert (group, resource, verb) in grants, (overlay, group, resource, verb)
        resources_granted = {r for _, r, _ in grants}
        for forbidden in ("secrets", "pods/exec", "pods/attach", "pods/portforward", "*"):
            assert forbidden not in resources_granted, (overlay, forbidden)
        assert "*" not in {v for *_, v in grants}
        binding = find(docs, "RoleBinding", "pingpong-deployers")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "pingpong-deployer",
        }
        assert [s["name"] for s in binding["subjects"]] == ["pingpong-deployers"]
        assert not find_all(docs, "ClusterRole")


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
    assert node_class["spec"]["role"] == terraform_name(karpenter["node_iam_role_name"])
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
