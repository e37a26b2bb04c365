"""One place for the environment's values: deploy/environment/environment.env.

kustomize replacements (kubectl.docs.kubernetes.io, "replacements": a source
field copied into target fields, whole or one delimited part) put the values
into the rendered objects; terraform and the pipelines read the same file;
deploy/monitoring names them as ${KEY} placeholders that
kube-prometheus-stack/generate.py --render fills in.
Proved both ways: with other values in the file, every consumer shows the new
ones and none the old; and no other file carries one of the values."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pingpong_toolkit.commands import run

from .helpers import ENVIRONMENT_FILE, REPO, environment, find, workload

OTHER = {
    "AWS_ACCOUNT_ID": "210987654321",
    "AWS_REGION": "ap-southeast-2",
    "STACK_NAME": "pingpong",
    "PUBLIC_HOST": "api.other.example.net",
    "GITHUB_ORG": "other-org",
    "GITHUB_REPO": "pingpong",
}
# The values that identify one environment (the stack name "pingpong" and the
# repository name are everywhere as plain words, so they are not scanned).
IDENTIFYING = ("AWS_ACCOUNT_ID", "AWS_REGION", "PUBLIC_HOST", "GITHUB_ORG")
RENDERER = "deploy/monitoring/kube-prometheus-stack/generate.py"


def copy_with(tmp_path: Path, values: dict[str, str]) -> Path:
    """The deploy tree and the scripts, with ``values`` in environment.env."""
    root = tmp_path / "repo"
    for part in ("deploy/k8s", "deploy/environment", "deploy/monitoring", "scripts"):
        shutil.copytree(REPO / part, root / part)
    lines = [f"{k}={v}" for k, v in values.items()]
    (root / "deploy/environment/environment.env").write_text("\n".join(lines) + "\n")
    return root


def render(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(run(["kubectl", "kustomize", str(path)]).stdout) if d]


def test_every_consumer_takes_the_values_from_the_file(tmp_path: Path) -> None:
    root = copy_with(tmp_path, OTHER)
    registry = f"{OTHER['AWS_ACCOUNT_ID']}.dkr.ecr.{OTHER['AWS_REGION']}.amazonaws.com"
    repo = f"{OTHER['GITHUB_ORG']}/{OTHER['GITHUB_REPO']}"
    for overlay in ("prod", "prod-bluegreen"):
        docs = render(root / "deploy/k8s/overlays" / overlay)
        store = find(docs, "SecretStore", "aws-secrets-manager")
        assert store["spec"]["provider"]["aws"]["region"] == OTHER["AWS_REGION"]
        sa = find(docs, "ServiceAccount", "pingpong-secrets")["metadata"]["annotations"]
        role = f"arn:aws:iam::{OTHER['AWS_ACCOUNT_ID']}:role/pingpong-secrets-pingpong"
        assert sa["eks.amazonaws.com/role-arn"] == role
        ingress = find(docs, "Ingress", "pingpong")["spec"]
        assert ingress["rules"][0]["host"] == OTHER["PUBLIC_HOST"]
        assert ingress["tls"][0]["hosts"] == [OTHER["PUBLIC_HOST"]]
        image = workload(docs)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.startswith(f"{registry}/pingpong:")
        assert not find_all_config(docs), "the environment ConfigMap is local-config only"
    policy = find(render(root / "deploy/k8s/policies"), "Policy", "verify-pingpong-images")
    verify = policy["spec"]["rules"][0]["verifyImages"][0]
    assert verify["imageReferences"] == ["*"]  # every image, whatever its registry
    subject = verify["attestors"][0]["entries"][0]["keyless"]["subject"]
    assert subject == f"https://github.com/{repo}/.github/workflows/main.yaml@refs/heads/main"
    env = run([str(root / "scripts/ci-env.sh")], env={"REVISION": "abc"}).stdout
    derived = dict(line.split("=", 1) for line in env.splitlines())
    assert derived["IMAGE_REPO"] == f"{registry}/pingpong"
    assert (
        derived["AWS_DEPLOY_ROLE_ARN"]
        == f"arn:aws:iam::{OTHER['AWS_ACCOUNT_ID']}:role/pingpong-ci-deploy"
    )
    assert derived["RELEASE_IDENTITY"] == subject
    rendered_everything = (
        "\n".join(
            yaml.safe_dump_all(render(root / "deploy/k8s/overlays" / o))
            for o in ("prod", "prod-bluegreen")
        )
        + env
        + monitoring_takes_the_values(root)
    )
    for key in IDENTIFYING:
        assert environment()[key] not in rendered_everything, f"{key} not taken from the file"
    placeholders = "|".join(OTHER)
    assert not re.findall(rf"\$\{{(?:{placeholders})\}}", rendered_everything)


def monitoring_takes_the_values(root: Path) -> str:
    """generate.py --render, as docs/deploy.md step 4 runs it: the SNS topics
    and their region, the Probe's host, the redis_exporter's SecretStore and
    the runbook links carry the file's values. Returns all it rendered."""
    out = root / "deploy/rendered/monitoring"
    run([sys.executable, str(root / RENDERER), "--render", str(out)])
    kps = out / "kube-prometheus-stack"
    values = yaml.safe_load((kps / "alertmanager-values.yaml").read_text())
    receivers = values["alertmanager"]["config"]["receivers"]
    topics = [sns for r in receivers for sns in r.get("sns_configs", [])]
    region, account = OTHER["AWS_REGION"], OTHER["AWS_ACCOUNT_ID"]
    assert len(topics) == 3
    for sns in topics:
        assert sns["topic_arn"].startswith(f"arn:aws:sns:{region}:{account}:pingpong-")
        assert sns["sigv4"]["region"] == region
    docs = render(out)
    probe = find(docs, "Probe", "pingpong")["spec"]["targets"]["staticConfig"]["static"]
    assert probe == [f"https://{OTHER['PUBLIC_HOST']}/ping"]
    assert find(docs, "SecretStore", "aws-secrets-manager")["spec"]["provider"]["aws"] == {
        "service": "SecretsManager",
        "region": region,
        "auth": {"jwt": {"serviceAccountRef": {"name": "redis-exporter-secrets"}}},
    }
    sa = find(docs, "ServiceAccount", "redis-exporter-secrets")["metadata"]["annotations"]
    assert (
        sa["eks.amazonaws.com/role-arn"]
        == f"arn:aws:iam::{account}:role/pingpong-secrets-monitoring"
    )
    runbooks = [
        rule["annotations"]["runbook_url"]
        for d in docs
        if d["kind"] == "PrometheusRule"
        for group in d["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    repo = f"https://github.com/{OTHER['GITHUB_ORG']}/{OTHER['GITHUB_REPO']}/blob/main/"
    assert runbooks and all(url.startswith(repo) for url in runbooks)
    scrape = yaml.safe_load((out / "prometheus/prometheus.yml").read_text())
    (probe_job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "pingpong-probe"]
    assert probe_job["static_configs"][0]["targets"] == probe
    return "\n".join(
        path.read_text() for path in sorted(out.rglob("*")) if path.suffix in (".yaml", ".yml")
    )


def find_all_config(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "environment"]


def test_terraform_reads_the_same_file() -> None:
    """environment.tf parses the file with the same KEY=VALUE rule, and no
    variable restates a value the file holds."""
    text = (REPO / "deploy/terraform/environment.tf").read_text()
    assert 'file("${path.module}/../environment/environment.env")' in text
    for key in ("AWS_ACCOUNT_ID", "AWS_REGION", "STACK_NAME", "GITHUB_ORG", "GITHUB_REPO"):
        assert f'local.environment["{key}"]' in text, key
    variables = (REPO / "deploy/terraform/variables.tf").read_text()
    for gone in ('variable "region"', 'variable "name"', 'variable "github_repo"'):
        assert gone not in variables


def test_no_other_file_carries_an_environment_value() -> None:
    values = {environment()[k]: k for k in IDENTIFYING}
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    carrying: dict[str, list[str]] = {}
    for name in tracked:
        path = REPO / name
        if path == ENVIRONMENT_FILE or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found = [key for value, key in values.items() if value in text]
        if found:
            carrying[name] = found
    assert not carrying, carrying
