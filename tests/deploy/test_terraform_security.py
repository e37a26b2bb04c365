"""Who may become whom, and what exists before it is used, in deploy/terraform.
Each test encodes the cited upstream behaviour on our files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .helpers import (
    REPO,
    TF,
    actions,
    addon_values,
    blocks,
    one,
    parse_tf,
    pod_identities,
    policy_docs,
    resources,
    secrets_manager,
)


def conditions(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["variable"]: c for c in statement.get("condition", [])}


def test_ci_roles_trust_only_the_release_workflow(hcl: dict[str, dict[str, Any]]) -> None:
    """AWS STS validates GitHub's job_workflow_ref claim in trust policies
    (aws.amazon.com/about-aws/whats-new/2026/01/aws-sts-supports-validation-identity-provider-claims/).
    The sub claim names a repository and a ref or environment, not a
    workflow: without job_workflow_ref any workflow file on main (or any job in
    the environment) may take the push or deploy role."""
    docs = policy_docs(hcl)
    ref = blocks(hcl, "locals")["release_workflow_ref"]
    assert ref == "${local.github_repo}/.github/workflows/main.yaml@refs/heads/main"
    assert (REPO / ".github" / "workflows" / "main.yaml").exists()
    claim = conditions(one(docs["ci_trust"]["statement"]))[
        "token.actions.githubusercontent.com:job_workflow_ref"
    ]
    assert claim["test"] == "StringEquals" and claim["values"] == ["${local.release_workflow_ref}"]
    roles = resources(hcl, "aws_iam_role")
    for role in ("push", "deploy"):
        trust = f'${{data.aws_iam_policy_document.ci_trust["{role}"].json}}'
        assert roles[f"ci_{role}"]["assume_role_policy"] == trust


def test_pod_identity_roles_trust_one_service_account_of_this_cluster(
    hcl: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """EKS user guide, "Create IAM role with trust policy required by EKS Pod
    Identity" ("Setting Conditions"): the pods.eks.amazonaws.com principal,
    restricted by the session tags Pod Identity sets (eks-cluster-arn,
    kubernetes-namespace, kubernetes-service-account); aws:SourceAccount
    against the confused deputy (IAM user guide). Without the tags any
    association in the account may take any of these roles. The Karpenter
    module's controller trust has no condition at all
    (terraform-aws-eks modules/karpenter/main.tf, controller_assume_role, sid
    "PodIdentity"): our statement of that sid replaces it
    (iam_role_override_assume_policy_documents; aws_iam_policy_document
    override_policy_documents replace statements of the same sid)."""
    trust = parse_tf(TF / "modules" / "pod-identity-trust" / "main.tf", tmp_path)
    (doc,) = [
        d["aws_iam_policy_document"]["this"]
        for d in trust["data"]
        if "aws_iam_policy_document" in d
    ]
    statement = one(doc["statement"])
    assert statement["sid"] == "PodIdentity"
    assert one(statement["principals"])["identifiers"] == ["pods.eks.amazonaws.com"]
    assert set(statement["actions"]) == {"sts:AssumeRole", "sts:TagSession"}
    wanted = {
        "aws:SourceAccount": "${data.aws_caller_identity.current.account_id}",
        "aws:RequestTag/eks-cluster-arn": "${var.cluster_arn}",
        "aws:RequestTag/kubernetes-namespace": "${var.namespace}",
        "aws:RequestTag/kubernetes-service-account": "${var.service_account}",
    }
    given = {c["variable"]: c for c in one(blocks({"main.tf": trust}, "locals")["conditions"])}
    assert {k: (c["test"], c["values"]) for k, c in given.items()} == {
        k: ("StringEquals", v) for k, v in wanted.items()
    }
    role = (TF / "modules" / "pod-identity-role" / "main.tf").read_text()
    assert 'source = "../pod-identity-trust"' in role
    assert "assume_role_policy = module.trust.json" in role
    modules = blocks(hcl, "module")
    assert modules["pod_identity"]["cluster_arn"] == "${module.eks.cluster_arn}"
    assert modules["pod_identity"]["for_each"] == "${local.pod_identities}"
    assert modules["pod_identity_trust"]["for_each"] == "${local.registry_pod_identities}"
    karpenter = modules["karpenter"]
    assert karpenter["iam_role_override_assume_policy_documents"] == [
        '${module.pod_identity_trust["karpenter"].json}'
    ]
    assert (
        karpenter["service_account"] == '${module.pod_identity_trust["karpenter"].service_account}'
    )
    for key, module in (
        ("aws-lb-controller", modules["aws_lb_controller_pod_identity"]),
        ("ebs-csi", modules["ebs_csi_pod_identity"]),
    ):
        assert (
            module["trust_policy_conditions"]
            == f'${{module.pod_identity_trust["{key}"].conditions}}'
        )
    assert set(pod_identities(hcl)) >= {"karpenter", "aws-lb-controller", "ebs-csi"}
    addon = one(resources(hcl, "aws_eks_addon")["ebs_csi"]["pod_identity_association"])
    assert addon["service_account"] == pod_identities(hcl)["ebs-csi"]["service_account"]


def test_kyverno_can_read_what_it_verifies(hcl: dict[str, dict[str, Any]]) -> None:
    """Kyverno verifyImages fetches signatures and attestations from the
    registry with the admission controller's credentials (Kyverno docs,
    "Verify Images", private registries; the amazon credential helper uses
    the AWS SDK chain, which includes EKS Pod Identity) and, for a KMS key
    attestor, calls kms:GetPublicKey. The nodes give pods no instance role."""
    module = pod_identities(hcl)["kyverno"]
    sa = addon_values("kyverno-values.yaml")["admissionController"]["rbac"]["serviceAccount"]
    assert (module["namespace"], module["service_account"]) == ("kyverno", sa["name"])
    granted = actions(policy_docs(hcl)["kyverno"])
    assert {
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    } <= granted
    assert {"kms:GetPublicKey"} <= granted
    policy = yaml.safe_load(
        (REPO / "deploy" / "k8s" / "policies" / "verify-images.yaml").read_text()
    )
    kms = {
        e["keys"]["kms"]
        for v in policy["spec"]["rules"][0]["verifyImages"]
        for a in [*v["attestors"], *[x for att in v["attestations"] for x in att["attestors"]]]
        for e in a["entries"]
        if "keys" in e
    }
    assert kms == {"awskms:///alias/pingpong-cosign"}
    alias = resources(hcl, "aws_kms_alias")["cosign"]["name"]
    assert alias.replace("${local.name}", "pingpong") == "alias/pingpong-cosign"


def test_every_secret_has_a_value_from_the_first_apply(hcl: dict[str, dict[str, Any]]) -> None:
    """External Secrets, AWS provider: a secret without a version fails the
    sync (ResourceNotFoundException), the target Secret never appears and a
    pod mounting it never starts."""
    # One secret and one version per entry of local.secrets (secrets_manager
    # checks the two for_each agree), a value for each.
    assert set(secrets_manager(hcl)) == {
        "pingpong/redis-url",
        "pingpong/redis-exporter",
        "pingpong/admin-tokens",
    }
    assert all(s["value"] for s in secrets_manager(hcl).values())
    assert set(resources(hcl, "aws_secretsmanager_secret")) == {"this"}
    digests = blocks(hcl, "variable")["admin_token_digests"]
    assert "default" not in digests  # asked for at the first apply
    assert "sha256" in json.dumps(digests["validation"])


def test_terraform_version_knows_the_backend_settings(hcl: dict[str, dict[str, Any]]) -> None:
    """Terraform S3 backend docs: use_lockfile (native S3 locking) exists from
    Terraform 1.10; an older CLI refuses the backend configuration."""
    assert "use_lockfile = true" in (TF / "backend.hcl.example").read_text()
    required = one(hcl["versions.tf"]["terraform"])["required_version"]
    major, minor = map(int, re.search(r">=\s*(\d+)\.(\d+)", required).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (1, 10)
    provider = one(one(hcl["versions.tf"]["provider"])["aws"])
    assert provider["allowed_account_ids"] == ["${local.account_id}"]


def test_ecr_lifecycle_counts_release_images(hcl: dict[str, dict[str, Any]]) -> None:
    """ECR lifecycle policies: tagStatus any counts every image, untagged
    referrers (signatures, attestations) included; release images are the
    tagged ones (the commit SHA)."""
    policy = json.dumps(resources(hcl, "aws_ecr_lifecycle_policy")["app"]["policy"])
    assert "tagged" in policy and "any" not in policy


def test_redis_users_replace_the_shared_token(hcl: dict[str, dict[str, Any]]) -> None:
    """ElastiCache RBAC: a replication group with user_group_ids
    authenticates users of the group (each group holds a user named
    "default"); the access strings are the files tests/deploy/test_redis_acl.py
    runs."""
    (group,) = resources(hcl, "aws_elasticache_replication_group").values()
    assert group["user_group_ids"] == ["${aws_elasticache_user_group.redis.user_group_id}"]
    assert "auth_token" not in group
    default = resources(hcl, "aws_elasticache_user")["default"]
    assert default["user_name"] == "default" and default["access_string"].startswith("off ")
    users = one(blocks(hcl, "locals")["redis_users"])
    for name in ("service", "exporter"):
        assert f"redis-acl/{name}.acl" in users[name]["access"]
    url = json.dumps(secrets_manager(hcl)["pingpong/redis-url"])
    assert (
        "local.redis_users.service.user_name" in url
        and 'random_password.redis[\\"service\\"]' in url
    )
    exporter = yaml.safe_load_all(
        (REPO / "deploy/monitoring/kube-prometheus-stack/redis-exporter.yaml").read_text()
    )
    secret = next(d for d in exporter if d and d["kind"] == "ExternalSecret")
    keys = {d["remoteRef"]["key"] for d in secret["spec"]["data"]}
    assert keys == {"pingpong/redis-exporter"} and keys <= set(secrets_manager(hcl))
