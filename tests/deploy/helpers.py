"""Helpers of the deploy/ checks: real tools, found on PATH.

Install the tools once (the Makefile does the same):

    python3 -m venv .tools-venv && .tools-venv/bin/pip install -r tools/requirements.txt
    npm ci --prefix tools/k8s
    export PATH="$PWD/.tools-venv/bin:$PWD/tools/k8s/node_modules/.bin:$PATH"
    python3 -m pytest tests/deploy

Also needed on PATH: kubectl (kustomize is built in), terraform, node >= 20,
java >= 17 (npm-groovy-lint), promtool. Every tool runs through
pingpong_toolkit's ``run``: a missing tool fails the test that needs it (nothing
is skipped), and so does a non-zero exit unless the test passes ``check=False``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pingpong_toolkit.commands import run

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TF = REPO / "deploy" / "terraform"
ADDONS = K8S / "addons"
MONITORING = REPO / "deploy" / "monitoring"
OVERLAYS = ("dev", "prod", "prod-bluegreen")
# Dev runs beside prod, out of the namespace the image policy guards.
NAMESPACES = {"dev": "pingpong-dev", "prod": "pingpong", "prod-bluegreen": "pingpong"}


def captured(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern``'s first match in ``text``; the test fails
    when nothing matches."""
    match = re.search(pattern, text, flags)
    assert match, f"no {pattern!r} in {text!r}"
    return match.group(1)


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def find_all(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pingpong Deployment (dev) or Rollout (prod overlays)."""
    found = [
        d
        for d in docs
        if d["kind"] in ("Deployment", "Rollout") and d["metadata"]["name"] == "pingpong"
    ]
    assert len(found) == 1, "expected exactly one pingpong Deployment or Rollout"
    return found[0]


def app_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = workload(docs)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "pingpong")


def checkov(target: Path, framework: str) -> dict[str, Any]:
    """One checkov run over a directory; the JSON report of that framework."""
    proc = run(
        [
            "checkov",
            "-d",
            str(target),
            "--framework",
            framework,
            "--output",
            "json",
            "--compact",
            "--skip-download",
            "--soft-fail",
        ],
        env={"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        timeout=600,
    )
    report: dict[str, Any] | list[dict[str, Any]] = json.loads(proc.stdout)
    if isinstance(report, list):
        report = next(r for r in report if r.get("check_type") == framework)
    return report


def norm(value: Any) -> Any:
    """hcl2tojson wraps every attribute value in a list: unwrap that one
    level, keep block lists (lists of objects) and drop the line markers."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k.startswith("__"):
                continue
            if isinstance(v, list) and len(v) == 1 and not isinstance(v[0], dict):
                v = v[0]
            out[k] = norm(v)
        return out
    if isinstance(value, list):
        return [norm(v) for v in value]
    return value


def one(value: Any) -> Any:
    """A block or object attribute given once: its single entry."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def blocks(hcl: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    """All blocks of one kind (variable, output, module, ...) by name."""
    found: dict[str, Any] = {}
    for doc in hcl.values():
        for entry in doc.get(kind, []):
            found.update(entry)
    return found


def pod_identities(hcl: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every service account that gets an AWS role through EKS Pod Identity,
    by key: ours (local.pod_identities, with its policy) and the ones
    registry modules make roles for (local.registry_pod_identities)."""
    found = blocks(hcl, "locals")
    return {**one(found["registry_pod_identities"]), **one(found["pod_identities"])}


def resources(hcl: dict[str, dict[str, Any]], rtype: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for doc in hcl.values():
        for entry in doc.get("resource", []):
            found.update(entry.get(rtype, {}))
    return found


def arg_defaults(template: dict[str, Any]) -> dict[str, str]:
    """The arguments an AnalysisTemplate gives a value of its own."""
    return {a["name"]: a["value"] for a in template["spec"].get("args", []) if "value" in a}


def policy_docs(hcl: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every aws_iam_policy_document data source of the root module, by name."""
    docs: dict[str, Any] = {}
    for doc in hcl.values():
        for entry in doc.get("data", []):
            docs.update(entry.get("aws_iam_policy_document", {}))
    return docs


def actions(doc: dict[str, Any]) -> set[str]:
    return {a for s in doc["statement"] for a in s["actions"]}


def parse_tf(path: Path, tmp_path: Path) -> dict[str, Any]:
    """One .tf file outside the root module, parsed like the ``hcl`` fixture."""
    target = tmp_path / f"{path.stem}.json"
    run(["hcl2tojson", str(path), str(target)])
    parsed: dict[str, Any] = norm(json.loads(target.read_text()))
    return parsed


def addon_values(name: str) -> dict[str, Any]:
    """The Helm values file ``deploy/k8s/addons/<name>``."""
    loaded: dict[str, Any] = yaml.safe_load((ADDONS / name).read_text())
    return loaded


def cpu_millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


ENVIRONMENT_FILE = REPO / "deploy" / "environment" / "environment.env"


def environment() -> dict[str, str]:
    """The environment's values (deploy/environment/environment.env), KEY=VALUE
    lines read the way scripts/ci-env.sh and deploy/terraform/environment.tf do."""
    found: dict[str, str] = {}
    for line in ENVIRONMENT_FILE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def terraform_name(value: str) -> str:
    """A terraform string built from the stack name, as applied."""
    return value.replace("${local.name}", environment()["STACK_NAME"])


def ecr_image(tag: str) -> str:
    """An image of the environment's ECR repository (what CI pushes)."""
    env = environment()
    registry = f"{env['AWS_ACCOUNT_ID']}.dkr.ecr.{env['AWS_REGION']}.amazonaws.com"
    return f"{registry}/{env['STACK_NAME']}:{tag}"


def secrets_manager(hcl: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stack's Secrets Manager secrets (local.secrets), by name as
    applied, each with its value expression; only those that also get a
    version from the same map (aws_secretsmanager_secret_version) count."""
    secret = resources(hcl, "aws_secretsmanager_secret")["this"]
    version = resources(hcl, "aws_secretsmanager_secret_version")["this"]
    assert secret["for_each"] == version["for_each"] == "${local.secrets}"
    assert version == {
        "for_each": "${local.secrets}",
        "secret_id": "${aws_secretsmanager_secret.this[each.key].id}",
        "secret_string": "${each.value.value}",
    }
    return {
        terraform_name(secret["name"].replace("${each.key}", key)): value
        for key, value in one(blocks(hcl, "locals")["secrets"]).items()
    }


def secret_readers(hcl: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The IRSA roles that read Secrets Manager for one namespace's
    SecretStore (local.secret_readers, module secret_reader), by role name as
    applied: namespace, service account and the secret names it may read."""
    name = blocks(hcl, "module")["secret_reader"]["name"]
    found: dict[str, dict[str, Any]] = {}
    for key, reader in one(blocks(hcl, "locals")["secret_readers"]).items():
        listed = reader["secrets"]  # norm() unwraps a list of one
        found[terraform_name(name.replace("${each.key}", key))] = {
            "namespace": reader["namespace"],
            "service_account": reader["service_account"],
            "secrets": {
                terraform_name(f"${{local.name}}/{s}")
                for s in ([listed] if isinstance(listed, str) else listed)
            },
        }
    return found
