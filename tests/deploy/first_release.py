"""A model of docs/deploy.md's first release, step by step: what each command
creates and what it consumes, so tests/deploy/test_first_release.py can ask,
at every step, whether everything consumed already exists.

Commands are read from the ```sh blocks of the guide, in order. Each command
kind has a resolver; a command the model does not know fails the walk (so a
new kind of step cannot slip through unchecked). What the add-on charts create
(CRDs, IngressClasses, the service accounts that call AWS) is written down per
chart, from each chart's documentation, next to the table.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    REPO,
    environment,
    pod_identities,
    secret_readers,
    secrets_manager,
)

GUIDE = REPO / "docs" / "deploy.md"
MONITORING_RENDERER = "deploy/monitoring/kube-prometheus-stack/generate.py"


@dataclass(frozen=True)
class Chart:
    """What installing a chart makes, and the AWS identity it needs, if any
    (namespace, service account)."""

    crds: frozenset[str] = frozenset()
    ingress_classes: frozenset[str] = frozenset()
    aws_identity: tuple[str, str] | None = None


# Each chart's documented objects: aws-load-balancer-controller (eks-charts
# README: IngressClass "alb", TargetGroupBinding CRD; calls the ELB/EC2 APIs),
# Karpenter (NodePool, EC2NodeClass; calls EC2), argo-rollouts (Rollout,
# AnalysisTemplate, AnalysisRun CRDs; ELB Describe* with
# --aws-verify-target-group), external-secrets (installCRDs: ExternalSecret,
# SecretStore; Secrets Manager as each store's service account), kyverno
# (Policy, ClusterPolicy; ECR and KMS for verifyImages), kube-prometheus-stack
# (Prometheus Operator CRDs; Alertmanager publishes to SNS), the ARC
# controller (AutoscalingRunnerSet).
CHARTS = {
    "eks/aws-load-balancer-controller": Chart(
        frozenset({"TargetGroupBinding"}),
        frozenset({"alb"}),
        ("kube-system", "aws-load-balancer-controller"),
    ),
    "oci://public.ecr.aws/karpenter/karpenter": Chart(
        frozenset({"NodePool", "EC2NodeClass", "NodeClaim"}),
        aws_identity=("kube-system", "karpenter"),
    ),
    "argo/argo-rollouts": Chart(
        frozenset({"Rollout", "AnalysisTemplate", "AnalysisRun", "Experiment"}),
        aws_identity=("argo-rollouts", "argo-rollouts"),
    ),
    # No AWS identity and no cluster-wide kinds (its values turn them off):
    # each SecretStore brings its own service account (store_identity).
    "external-secrets/external-secrets": Chart(frozenset({"ExternalSecret", "SecretStore"})),
    "kyverno/kyverno": Chart(
        frozenset({"Policy", "ClusterPolicy"}),
        aws_identity=("kyverno", "kyverno-admission-controller"),
    ),
    "prometheus-community/kube-prometheus-stack": Chart(
        frozenset(
            {
                "PodMonitor",
                "ServiceMonitor",
                "PrometheusRule",
                "Probe",
                "Prometheus",
                "Alertmanager",
            }
        ),
        aws_identity=("monitoring", "alertmanager"),
    ),
    "prometheus-community/prometheus-blackbox-exporter": Chart(),
    "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller": Chart(
        frozenset({"AutoscalingRunnerSet", "EphemeralRunnerSet", "EphemeralRunner"})
    ),
    "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set": Chart(),
}
CORE_KINDS = {
    "Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
    "ConfigMap", "Secret", "Service", "Deployment", "PodDisruptionBudget",
    "HorizontalPodAutoscaler", "NetworkPolicy", "Ingress", "Job", "StatefulSet", "StorageClass",
}  # fmt: skip
# Commands that only read, print, build locally or talk to AWS outside the
# model's resources (a certificate request, a login): nothing to resolve.
LOCAL_COMMANDS = {
    "aws",
    "curl",
    "echo",
    "printf",
    "cp",
    "sed",
    "docker",
    "openssl",
    "amtool",
    "kubectl",
}


@dataclass
class World:
    """What exists so far."""

    crds: set[str] = field(default_factory=set)
    ingress_classes: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    aws_identities: set[tuple[str, str]] = field(default_factory=set)
    aws_secrets_with_value: set[str] = field(default_factory=set)
    # IRSA roles of the SecretStores: role name -> namespace, service account, secrets.
    secret_readers: dict[str, dict[str, Any]] = field(default_factory=dict)
    signed_repositories: set[str] = field(default_factory=set)
    enforced_patterns: list[str] = field(default_factory=list)
    # Namespaces an Enforce verifyImages policy guards (Kyverno Policy: its own).
    enforced_namespaces: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # Directories a step wrote (generate.py --render DIR), where the walk put them.
    scratch: Path = REPO
    rendered: dict[str, Path] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """A path a command names: in a directory an earlier step rendered, or the repo's."""
        for target, where in self.rendered.items():
            if name == target or name.startswith(target.rstrip("/") + "/"):
                return where / name[len(target) :].lstrip("/")
        return REPO / name

    def has(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.objects or (kind, "", name) in self.objects


def commands(guide: Path = GUIDE) -> list[tuple[str, str]]:
    """(section, command) for every command of the guide's sh blocks, in order;
    continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    section = ""
    text = guide.read_text()
    for match in re.finditer(r"^## ([^\n]*)$|^ *```sh\n(.*?)^ *```", text, re.M | re.S):
        if match.group(1):
            section = match.group(1)
            continue
        joined = re.sub(r"\\\n\s*", " ", match.group(2))
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append((section, line))
    return found


def terraform_apply(world: World, hcl: dict[str, dict[str, Any]]) -> None:
    for identity in pod_identities(hcl).values():
        world.aws_identities.add((identity["namespace"], identity["service_account"]))
    world.secret_readers = secret_readers(hcl)
    world.aws_secrets_with_value |= set(secrets_manager(hcl))


def helm_install(world: World, argv: list[str]) -> None:
    release, chart = argv[3], argv[4]
    if chart not in CHARTS:
        world.problems.append(f"helm chart {chart} has no entry in the model")
        return
    if "--version" not in argv:
        world.problems.append(f"helm release {release} installs {chart} without --version")
    made = CHARTS[chart]
    if made.aws_identity and made.aws_identity not in world.aws_identities:
        world.problems.append(f"{chart} calls AWS but {made.aws_identity} has no Pod Identity role")
    world.crds |= made.crds
    world.ingress_classes |= made.ingress_classes


def render_monitoring(world: World, argv: list[str]) -> None:
    """generate.py --render DIR: deploy/monitoring with the environment's
    values filled in, run for real (into scratch space) so that later steps
    read what the guide's would."""
    target = argv[argv.index("--render") + 1]
    world.rendered[target] = world.scratch / "rendered" / target
    run([sys.executable, str(REPO / MONITORING_RENDERER), "--render", str(world.rendered[target])])


def render(world: World, argv: list[str]) -> list[dict[str, Any]]:
    """What a kubectl apply of -f FILE, -k DIR or a kustomize pipe applies."""
    if "-k" in argv:
        target = argv[argv.index("-k") + 1]
        text = run(["kubectl", "kustomize", str(world.path(target))]).stdout
    else:
        text = world.path(argv[argv.index("-f") + 1]).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def apply(world: World, docs: list[dict[str, Any]], where: str) -> None:
    for doc in docs:
        kind = doc["kind"]
        if kind not in CORE_KINDS and kind not in world.crds:
            world.problems.append(f"{where}: {kind} applied before its CRD is installed")
        meta = doc["metadata"]
        world.objects[(kind, meta.get("namespace", ""), meta["name"])] = doc
        if kind == "Policy" and doc["apiVersion"].startswith("kyverno.io"):
            for rule in doc["spec"]["rules"]:
                for verify in rule.get("verifyImages", []):
                    if verify.get("failureAction") == "Enforce":
                        world.enforced_patterns += verify["imageReferences"]
                        world.enforced_namespaces.add(meta.get("namespace", ""))
    for doc in docs:
        check_references(world, doc, where)


def check_references(world: World, doc: dict[str, Any], where: str) -> None:
    """Every reference of the object resolves to something that exists; a
    reference key the model does not know is a problem in itself."""
    ns = doc["metadata"].get("namespace", "")
    label = f"{where}: {doc['kind']} {doc['metadata']['name']}"
    secrets_made = {
        (o["metadata"].get("namespace", ""), o["spec"]["target"]["name"])
        for (k, _, _), o in world.objects.items()
        if k == "ExternalSecret"
    }

    def need(ok: bool, what: str) -> None:
        if not ok:
            world.problems.append(f"{label}: {what} does not exist")

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key == "pattern":  # a Kyverno validate pattern describes objects
                continue
            if key in ("canaryService", "pingService", "pongService", "rootService"):
                need(world.has("Service", ns, value), f"Service {value}")
            elif key == "templateName":
                need(world.has("AnalysisTemplate", ns, value), f"AnalysisTemplate {value}")
            elif key == "secretStoreRef":
                need(
                    world.has(value["kind"], ns, value["name"]), f"{value['kind']} {value['name']}"
                )
            elif key == "remoteRef":
                need(
                    value["key"] in world.aws_secrets_with_value,
                    f"a value of secret {value['key']}",
                )
            elif key in ("secretKeyRef", "secretName"):
                name = value["name"] if isinstance(value, dict) else value
                need((ns, name) in secrets_made or world.has("Secret", ns, name), f"Secret {name}")
            elif key == "configMap" and isinstance(value, dict) and "name" in value:
                need(world.has("ConfigMap", ns, value["name"]), f"ConfigMap {value['name']}")
            elif key == "serviceAccountRef":
                need(
                    world.has("ServiceAccount", ns, value["name"]),
                    f"ServiceAccount {value['name']}",
                )
            elif key == "serviceAccountName":
                need(
                    value == "default" or world.has("ServiceAccount", ns, value),
                    f"ServiceAccount {value}",
                )
            elif key == "ingressClassName":
                need(value in world.ingress_classes, f"IngressClass {value}")
            elif key == "storageClassName":
                need(world.has("StorageClass", "", value), f"StorageClass {value}")
            elif key == "scaleTargetRef" or key == "nodeClassRef" or key == "roleRef":
                need(
                    world.has(value["kind"], ns, value["name"]), f"{value['kind']} {value['name']}"
                )
            elif key == "image" and isinstance(value, str):
                check_image(world, value, label, ns)
            elif (
                re.search(r"(Ref|Service|ClassName|Names?)$", key)
                and key not in KNOWN_NON_REFERENCES
            ):
                world.problems.append(f"{label}: reference {key!r} has no resolver in the model")
            walk(value)

    walk(doc.get("spec", {}))
    if doc["kind"] == "SecretStore":
        store_identity(world, doc, label)
    if doc["kind"] == "ExternalSecret":
        ref = doc["spec"]["secretStoreRef"]
        store = world.objects.get((ref["kind"], ns, ref["name"]))
        readable = store_identity(world, store, label) if store else set()  # else: need() above
        for data in doc["spec"].get("data", []):
            if data["remoteRef"]["key"] not in readable:
                world.problems.append(
                    f"{label}: its store's role may not read {data['remoteRef']['key']}"
                )


def store_identity(world: World, store: dict[str, Any], label: str) -> set[str]:
    """The secrets a SecretStore can read: as the service account it names,
    whose eks.amazonaws.com/role-arn must be a role trusted for exactly that
    namespace and service account (ESO "AWS Access", serviceAccountRef). A
    store without auth would use ESO's controller credentials, which
    nothing may rely on."""
    ns = store["metadata"].get("namespace", "")
    auth = store["spec"]["provider"].get("aws", {}).get("auth", {})
    sa_name = auth.get("jwt", {}).get("serviceAccountRef", {}).get("name")
    if not sa_name:
        world.problems.append(
            f"{label}: SecretStore {store['metadata']['name']} has no AWS identity of its own"
        )
        return set()
    sa = world.objects.get(("ServiceAccount", ns, sa_name), {"metadata": {}})
    arn = sa["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "no role-arn")
    reader = world.secret_readers.get(arn.rpartition(":role/")[2])
    if not reader or (reader["namespace"], reader["service_account"]) != (ns, sa_name):
        world.problems.append(f"{label}: ServiceAccount {ns}/{sa_name} has no role for it ({arn})")
        return set()
    secrets: set[str] = reader["secrets"]
    return secrets


KNOWN_NON_REFERENCES = {"ingressClassName", "containerName", "clusterName", "jobName"}


def check_image(world: World, image: str, label: str, namespace: str) -> None:
    """In a namespace an Enforce policy guards, every image of every workload
    and Job is checked by it (none slips past its imageReferences), signed
    by our pipeline, and pinned by digest (a tag can be pushed again
    elsewhere; the digest is what was signed)."""
    if namespace not in world.enforced_namespaces:
        return
    repo = image.split("@")[0].rsplit(":", 1)[0]
    enforced = any(
        re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), image)
        for p in world.enforced_patterns
    )
    if not enforced:
        world.problems.append(f"{label}: image {image} is not checked by any Enforce policy")
    elif repo not in world.signed_repositories:
        world.problems.append(
            f"{label}: image {image} is checked by an Enforce policy but unsigned"
        )
    if not re.search(r"@sha256:[0-9a-f]{64}$", image):
        world.problems.append(f"{label}: image {image} is not pinned by digest")


def sign(world: World) -> None:
    env = environment()
    world.signed_repositories.add(
        f"{env['AWS_ACCOUNT_ID']}.dkr.ecr.{env['AWS_REGION']}.amazonaws.com/{env['STACK_NAME']}"
    )


def deploy(world: World, argv: list[str]) -> list[dict[str, Any]]:
    """deploy.sh --render-only with the guide's --overlay, if any, and a
    signed image of our repository."""
    env = environment()
    image = (
        f"{env['AWS_ACCOUNT_ID']}.dkr.ecr.{env['AWS_REGION']}.amazonaws.com/{env['STACK_NAME']}:walk@sha256:"
        + "0" * 64
    )
    overlay = (
        argv[argv.index("--overlay") : argv.index("--overlay") + 2] if "--overlay" in argv else []
    )
    overlay = [o if o.startswith("-") else str(REPO / o) for o in overlay]
    text = run([str(REPO / "deploy/k8s/deploy.sh"), *overlay, "--render-only", image]).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def split(command: str) -> list[str]:
    return shlex.split(command.replace("$(", "(").replace("| ", "|| "))
