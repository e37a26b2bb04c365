"""Contract tests of the AWS side: first apply, CD's reach and roles, secrets,
the supply chain. Each encodes an upstream project's documented behaviour
(cited next to it) on our files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .helpers import (
    K8S,
    REPO,
    TF,
    actions,
    addon_values,
    blocks,
    find,
    one,
    parse_tf,
    policy_docs,
    resources,
    secret_readers,
    secrets_manager,
    workload,
)

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
    runner = addon_values("arc-runner-set-values.yaml")["runnerScaleSetName"]
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
    statement = one(docs["ci_trust"]["statement"])
    sub = {c["variable"]: c for c in statement["condition"]}[
        "token.actions.githubusercontent.com:sub"
    ]
    assert docs["ci_trust"]["for_each"] == "${local.ci_subjects}"
    assert sub["test"] == "StringEquals" and sub["values"] == ["${each.value}"]
    assert one(blocks(hcl, "locals")["ci_subjects"]) == {
        "deploy": "repo:${local.github_repo}:environment:${var.github_deploy_environment}",
        "push": "repo:${local.github_repo}:ref:refs/heads/main",
    }
    assert not any(a.startswith("ecr:") for a in actions(docs["ci_deploy"]))
    assert not any(a.startswith("eks:") for a in actions(docs["ci_push"]))
    eks = blocks(hcl, "module")["eks"]
    entries = one(eks["access_entries"])
    assert [e["principal_arn"] for e in entries.values()] == ["${aws_iam_role.ci_deploy.arn}"]
    roles = resources(hcl, "aws_iam_role")
    assert (
        roles["ci_deploy"]["assume_role_policy"]
        == '${data.aws_iam_policy_document.ci_trust["deploy"].json}'
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
        assert data["remoteRef"]["key"] == "pingpong/redis-url"
        assert data["remoteRef"]["key"] in secrets_manager(hcl)
        assert data["remoteRef"]["property"] == "url"
        assert es["spec"]["refreshInterval"]
        find(docs, "SecretStore", es["spec"]["secretStoreRef"]["name"])
    assert not [o for o in blocks(hcl, "output") if "password" in o or "token" in o]
    password = resources(hcl, "random_password")["redis"]
    assert "var.redis_auth_token_version" in json.dumps(password["keepers"])
    # The role of the pingpong namespace's store reads it (test_secret_stores.py).
    assert "pingpong/redis-url" in secret_readers(hcl)["pingpong-secrets-pingpong"]["secrets"]
    assert "Rotating the Redis passwords" in (REPO / "docs" / "deploy.md").read_text()


# -- supply chain ----------------------------------------------------------


def test_images_are_signed_with_an_sbom_and_admission_checks_it() -> None:
    """Kyverno verifyImages (kyverno.io/docs/writing-policies/verify-images/
    sigstore): validationFailureAction Enforce refuses pods whose image lacks
    a signature or attestation from the listed attestors. podinfo and the Argo
    projects sign with cosign and attach a CycloneDX/SPDX SBOM per image."""
    for pipeline in (REPO / ".github" / "workflows" / "main.yaml", REPO / "Jenkinsfile"):
        text = pipeline.read_text()
        assert "scripts/ci-sbom.sh" in text and "scripts/ci-push-attest.sh" in text, pipeline
    steps = (REPO / "scripts" / "ci-push-attest.sh").read_text()
    assert steps.count("cosign sign ") == 1
    # One attestation: cosign rewrites sha256-<digest>.att on every attest
    # (tests/container/test_release_steps.py runs the sequence).
    assert steps.count("cosign attest ") == 1 and "--type cyclonedx --predicate" in steps
    policy = yaml.safe_load((K8S / "policies" / "verify-images.yaml").read_text())
    assert policy["kind"] == "Policy" and policy["metadata"]["namespace"] == "pingpong"
    # Kyverno 1.13 deprecates spec.validationFailureAction for the per-rule
    # failureAction (kyverno.io/docs/policy-types/cluster-policy/validate/).
    assert "validationFailureAction" not in policy["spec"]
    (rule,) = policy["spec"]["rules"]
    assert rule["match"]["any"][0]["resources"]["kinds"] == ["Pod"]
    (verify,) = rule["verifyImages"]
    assert verify["failureAction"] == "Enforce"
    assert verify["required"] is True and verify["verifyDigest"] is True
    keyless = verify["attestors"][0]["entries"][0]["keyless"]
    assert keyless["issuer"] == "https://token.actions.githubusercontent.com"
    assert keyless["subject"].endswith("/.github/workflows/main.yaml@refs/heads/main")
    assert [a["type"] for a in verify["attestations"]] == ["https://cyclonedx.org/bom"]
