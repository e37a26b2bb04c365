"""deploy/k8s: every overlay renders, validates against the Kubernetes and
CRD schemas, and holds to the deployment contract: restricted pods, the app
container's ports, env and probes, a shutdown that outlasts the ALB, prod as a
zone-spread Rollout scaled by its HPA, default-deny networking."""

from __future__ import annotations

import base64
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    K8S,
    NAMESPACES,
    OVERLAYS,
    REPO,
    app_container,
    captured,
    find,
    find_all,
    workload,
)

PROD_OVERLAYS = ("prod", "prod-bluegreen")
VALIDATE_CRDS = REPO / "tools" / "k8s" / "validate-crds.mjs"
CONTRACT_CONFIG_KEYS = {
    "storage",
    "on_storage_error",
    "storage_timeout",
    "limit",
    "algorithm",
    "trusted_proxies",
    "policies",
    "api_keys",
}
CONTRACT_POLICY_KEYS = {"name", "match", "key", "rate", "burst", "algorithm", "shadow"}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod spec of a render, including the smoke-test Job in the AnalysisTemplate."""
    specs = []
    for d in docs:
        if d["kind"] in ("Deployment", "Rollout", "StatefulSet", "DaemonSet"):
            specs.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        if d["kind"] == "AnalysisTemplate":
            for m in d["spec"]["metrics"]:
                job = m["provider"].get("job")
                if job:
                    specs.append(
                        (
                            f"AnalysisTemplate/{d['metadata']['name']}",
                            job["spec"]["template"]["spec"],
                        )
                    )
    return specs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    kinds = {d["kind"] for d in rendered[overlay]}
    expected = {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Ingress",
        "RoleBinding",
    }
    assert expected <= kinds, f"missing kinds: {expected - kinds}"
    for d in rendered[overlay]:
        if d["kind"] not in ("Namespace", "ClusterRole"):  # cluster-scoped
            assert d["metadata"].get("namespace") == NAMESPACES[overlay], (
                f"{d['kind']}/{d['metadata']['name']}"
            )


def test_kubernetes_validate_strict(rendered_dir: Path) -> None:
    files = sorted(str(p) for p in rendered_dir.glob("*.yaml"))
    # The cluster version of deploy/terraform.
    version = (REPO / "deploy/terraform/variables.tf").read_text()
    cluster = captured(r'variable "kubernetes_version" \{.*?default\s*=\s*"([^"]+)"', version, re.S)
    proc = run(["kubernetes-validate", "--strict", "--quiet", "-k", cluster, *files])
    # Only the CRDs may be skipped; validate-crds.mjs covers them.
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        if "Couldn't find schema" in line:
            assert re.search(
                r"api version (argoproj\.io|monitoring\.coreos\.com|external-secrets\.io)/", line
            ), line


def test_crds_validate_against_their_schemas(rendered_dir: Path) -> None:
    files = sorted(str(p) for p in rendered_dir.glob("*.yaml"))
    proc = run(["node", str(VALIDATE_CRDS), *files])
    assert "INVALID" not in proc.stdout and "UNKNOWN" not in proc.stdout, proc.stdout
    assert "VALID argoproj.io/v1alpha1/Rollout pingpong" in proc.stdout


def test_crd_validation_rejects_unknown_fields(rendered_text: dict[str, str]) -> None:
    """Negative control: the validator would catch a misspelt field."""
    broken = rendered_text["prod"].replace("setWeight: 25", "setWieght: 25")
    assert broken != rendered_text["prod"]
    proc = run(["node", str(VALIDATE_CRDS), "-"], stdin=broken, check=False)
    assert proc.returncode == 1, proc.stdout
    assert (
        "INVALID argoproj.io/v1alpha1/Rollout pingpong" in proc.stdout
        and "setWieght" in proc.stdout
    )


def test_namespace_enforces_restricted_pod_security(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay in OVERLAYS:
        namespace = find(rendered[overlay], "Namespace", NAMESPACES[overlay])
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        # AWS Load Balancer Controller readiness gates.
        assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    specs = pod_specs(rendered[overlay])
    assert specs
    for where, spec in specs:
        assert spec.get("automountServiceAccountToken") is False, where
        psc = spec.get("securityContext", {})
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            assert isinstance(uid, int) and uid >= 10000, where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_container_matches_the_contract(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pod = workload(docs)["spec"]["template"]["spec"]
    c = app_container(docs)
    assert pod["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["runAsUser"] == 10001
    assert c["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},  # Prometheus only
        {"name": "admin", "containerPort": 8081, "protocol": "TCP"},  # no Service exposes it
    ]
    env = {e["name"]: e for e in c["env"]}
    # /metrics and /version leave the public port (metrics_port), and the
    # PodMonitor scrapes the port that serves them.
    assert env["PINGPONG_METRICS_PORT"]["value"] == "9090"
    assert env["PINGPONG_HOST"]["value"] == "0.0.0.0"
    assert env["PINGPONG_PORT"]["value"] == "8080"
    assert env["PINGPONG_STORAGE"]["valueFrom"]["secretKeyRef"]["name"] == "pingpong-storage"
    assert set(env) <= {
        "PINGPONG_HOST",
        "PINGPONG_PORT",
        "PINGPONG_CONFIG",
        "PINGPONG_STORAGE",
        "PINGPONG_LIMIT",
        "PINGPONG_BURST",
        "PINGPONG_ALGORITHM",
        "PINGPONG_WORKERS",
        "PINGPONG_TRUSTED_PROXY",
        "PINGPONG_ON_STORAGE_ERROR",
        "PINGPONG_METRICS_PORT",
        "PINGPONG_DRAIN_SECONDS",
        "PINGPONG_SLOT",
        "PINGPONG_COMMIT",
        "PINGPONG_ADMIN_PORT",
        "PINGPONG_ADMIN_TOKENS_FILE",
    }, "env var not in the contract"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    # The config file the env var points at is the mounted ConfigMap.
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert env["PINGPONG_CONFIG"]["value"] == f"{mount['mountPath']}/config.yaml"
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    find(docs, "ConfigMap", volume["configMap"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_outlasts_drain_and_alb_deregistration(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pod = workload(docs)["spec"]["template"]["spec"]
    c = app_container(docs)
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(next(e["value"] for e in c["env"] if e["name"] == "PINGPONG_DRAIN_SECONDS"))
    grace = pod["terminationGracePeriodSeconds"]
    annotations = find(docs, "Ingress", "pingpong")["metadata"]["annotations"]
    dereg = int(
        captured(
            r"deregistration_delay\.timeout_seconds=(\d+)",
            annotations["alb.ingress.kubernetes.io/target-group-attributes"],
        )
    )
    assert pre_stop >= 10, "the ALB needs time to stop sending new connections"
    assert dereg <= pre_stop, "the target must be gone from the ALB before SIGTERM"
    assert grace >= pre_stop + drain + 10, (
        "grace period must cover preStop + drain + in-flight requests"
    )


def test_config_map_is_in_the_contract_format(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay in OVERLAYS:
        cms = [
            d
            for d in rendered[overlay]
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("pingpong-config")
        ]
        assert len(cms) == 1
        config = yaml.safe_load(cms[0]["data"]["config.yaml"])
        assert set(config) <= CONTRACT_CONFIG_KEYS
        assert "storage" not in config, "the storage URL may hold a password: Secret only"
        assert config["on_storage_error"] in ("allow", "deny", "local")
        assert config["algorithm"] in ("gcra", "sliding-window", "fixed-window")
        assert re.fullmatch(r"\d+/(second|minute|hour|day)", config["limit"])
        for p in config["policies"]:
            assert set(p) <= CONTRACT_POLICY_KEYS
            assert re.fullmatch(r"client_ip|global|header:[A-Za-z0-9-]+", p["key"])
            assert re.fullmatch(r"\d+/(second|minute|hour|day)", p["rate"])
        for cidr in config["trusted_proxies"]:
            ipaddress.ip_network(cidr)


def test_prod_is_a_rollout_with_at_least_three_replicas_over_zones(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay in PROD_OVERLAYS:
        docs = rendered[overlay]
        rollout = workload(docs)
        assert rollout["kind"] == "Rollout" and rollout["apiVersion"] == "argoproj.io/v1alpha1"
        # The HPA owns the count: no replicas for every apply to reset.
        assert "replicas" not in rollout["spec"]
        hpa = find(docs, "HorizontalPodAutoscaler", "pingpong")["spec"]
        assert hpa["minReplicas"] >= 3 and hpa["maxReplicas"] > hpa["minReplicas"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "name": "pingpong",
        }
        keys = {
            t["topologyKey"]
            for t in rollout["spec"]["template"]["spec"]["topologySpreadConstraints"]
        }
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        image = app_container(docs)["image"]
        assert re.fullmatch(
            r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/pingpong:[\w.-]+", image
        ), image
        # The Redis URL comes from ElastiCache, never from git.
        assert not [d for d in docs if d["kind"] == "Secret"]
        assert not [d for d in docs if "redis" in d["metadata"]["name"]]


def test_dev_has_its_own_small_redis(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["dev"]
    assert workload(docs)["kind"] == "Deployment"
    redis = find(docs, "Deployment", "pingpong-redis")
    assert redis["spec"]["replicas"] == 1
    service = find(docs, "Service", "pingpong-redis")
    secret = find(docs, "Secret", "pingpong-storage")
    assert "url" in secret.get("data", {}) or "url" in secret.get("stringData", {})
    url = base64.b64decode(secret["data"]["url"]).decode()
    assert url.startswith(
        f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_the_pods(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    w = workload(docs)
    pod_labels = w["spec"]["template"]["metadata"]["labels"]
    assert w["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for svc in find_all(docs, "Service"):
        if (
            svc["metadata"]["name"].startswith("pingpong")
            and "redis" not in svc["metadata"]["name"]
        ):
            assert svc["spec"]["selector"].items() <= pod_labels.items(), svc["metadata"]["name"]
            assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pdb = find(docs, "PodDisruptionBudget", "pingpong")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    replicas = find(docs, "HorizontalPodAutoscaler", "pingpong")["spec"]["minReplicas"]
    assert pdb.get("maxUnavailable", 0) == 1 and replicas >= 2


def test_kustomize_sources_are_tidy() -> None:
    """Every file under deploy/k8s is used by some kustomization (no strays).
    addons/ (Helm values, Karpenter objects) and policies/ (the Kyverno policy)
    are applied on their own in docs/deploy.md and checked in
    test_release_contracts.py and test_aws_contracts.py."""
    referenced: set[Path] = set()
    for k in K8S.rglob("kustomization.yaml"):
        data = yaml.safe_load(k.read_text())
        referenced.add(k)
        for entry in data.get("resources", []) + data.get("components", []):
            referenced.add((k.parent / entry).resolve())
        for p in data.get("patches", []):
            if "path" in p:
                referenced.add((k.parent / p["path"]).resolve())
        for g in data.get("configMapGenerator", []) + data.get("secretGenerator", []):
            for f in g.get("files", []):
                referenced.add((k.parent / f.split("=")[-1]).resolve())
    for f in K8S.rglob("*.yaml"):
        if f.relative_to(K8S).parts[0] in ("addons", "policies"):
            continue
        assert f.resolve() in referenced or f.resolve().parent in referenced, (
            f"unused: {f.relative_to(REPO)}"
        )
