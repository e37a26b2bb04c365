"""deploy/terraform: formatted, parseable, and shaped as
production needs (community modules, immutable scanned ECR, Redis with TLS and
auth, OIDC roles for CI, the alarms module wired in).

`terraform init/validate` need the provider registry, which this machine
cannot reach: hcl2tojson parses (bc-python-hcl2, the python-hcl2 fork that
checkov ships; see tools/requirements.txt), checkov scans (test_checkov.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pingpong_toolkit.commands import run

from .helpers import TF, blocks, one, resources

ALARMS_INPUTS = {
    "name",
    "alb_arn_suffix",
    "alarm_emails",
    "node_asg_names",
    "redis_cluster_ids",
}


def test_terraform_fmt() -> None:
    env = {"TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"}
    run(["terraform", f"-chdir={TF}", "fmt", "-check", "-recursive", "-diff"], env=env)


def test_variables_and_outputs_are_described(hcl: dict[str, dict[str, Any]]) -> None:
    variables = blocks(hcl, "variable")
    assert len(variables) >= 10
    for name, v in variables.items():
        assert len(v.get("description", "")) > 10, f"variable {name} has no description"
        assert "type" in v, f"variable {name} has no type"
    for name, o in blocks(hcl, "output").items():
        assert len(o.get("description", "")) > 10, f"output {name} has no description"
    # The Redis auth token is no output: it goes to Secrets Manager (secrets.tf).
    assert not [n for n in blocks(hcl, "output") if "token" in n or "password" in n]


def test_community_modules(hcl: dict[str, dict[str, Any]]) -> None:
    modules = blocks(hcl, "module")
    assert (modules["vpc"]["source"]) == "terraform-aws-modules/vpc/aws"
    assert (modules["eks"]["source"]) == "terraform-aws-modules/eks/aws"
    assert (modules["eks"]["version"]) == "~> 21.0"
    eks = modules["eks"]
    # v21 input names (v20's cluster_* prefixes are gone).
    assert {
        "name",
        "kubernetes_version",
        "addons",
        "eks_managed_node_groups",
        "access_entries",
    } <= set(eks)
    assert not [k for k in eks if k.startswith("cluster_")]
    node_group = one(eks["eks_managed_node_groups"])["default"]
    policies = json.dumps(node_group["iam_role_additional_policies"])
    assert "AmazonEC2ContainerRegistryPullOnly" in policies, "nodes must be able to pull from ECR"
    assert "enableNetworkPolicy" in json.dumps(one(eks["addons"])["vpc-cni"])


def test_alarms_module_is_wired(hcl: dict[str, dict[str, Any]]) -> None:
    alarms = blocks(hcl, "module")["alarms"]
    assert (alarms["source"]) == "./modules/cloudwatch-alarms"
    assert set(alarms) - {"source"} == ALARMS_INPUTS
    assert (
        alarms["node_asg_names"] == "${module.eks.eks_managed_node_groups_autoscaling_group_names}"
    )
    variables = blocks(hcl, "variable")
    for name in ("alb_arn_suffix", "alarm_emails"):
        assert name in variables and alarms[name] == f"${{var.{name}}}"
    assert alarms["name"] == "${local.name}"


def test_ecr_is_immutable_and_scanned(hcl: dict[str, dict[str, Any]]) -> None:
    for repo in resources(hcl, "aws_ecr_repository").values():
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert one(repo["image_scanning_configuration"])["scan_on_push"] is True


def test_redis_has_tls_and_auth(hcl: dict[str, dict[str, Any]]) -> None:
    (redis,) = resources(hcl, "aws_elasticache_replication_group").values()
    assert redis["transit_encryption_enabled"] is True
    assert redis["transit_encryption_mode"] == "required"
    assert redis["user_group_ids"]  # RBAC users (test_terraform_security.py)
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["automatic_failover_enabled"] is True and redis["multi_az_enabled"] is True


def test_ci_role_is_oidc_and_least_privilege(hcl: dict[str, dict[str, Any]]) -> None:
    docs = {}
    for doc in hcl.values():
        for entry in doc.get("data", []):
            docs.update(entry.get("aws_iam_policy_document", {}))
    trust = one(docs["ci_trust"]["statement"])
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c for c in trust["condition"]}
    assert one(trust["principals"])["type"] == "Federated"
    aud = conditions["token.actions.githubusercontent.com:aud"]
    assert aud["values"] == ["sts.amazonaws.com"]
    sub = conditions["token.actions.githubusercontent.com:sub"]
    assert sub["test"] == "StringEquals", "no wildcards in the subject"
    subjects = one(blocks(hcl, "locals")["ci_subjects"]).values()
    assert all(v.startswith("repo:${local.github_repo}:") for v in subjects)
    assert not [v for v in subjects if "*" in v]
    for name in ("ci_push", "ci_deploy"):
        for statement in docs[name]["statement"]:
            if statement["resources"] == ["*"]:
                assert statement["actions"] == ["ecr:GetAuthorizationToken"]
            assert not [a for a in statement["actions"] if a.endswith("*")]
    # No long-lived keys anywhere.
    assert not resources(hcl, "aws_iam_access_key") and not resources(hcl, "aws_iam_user")


def test_remote_state_example() -> None:
    assert 'backend "s3" {}' in (TF / "versions.tf").read_text()
    example = (TF / "backend.hcl.example").read_text()
    for key in ("bucket", "key", "encrypt", "use_lockfile"):
        assert f"\n{key}" in example
    # The region is deploy/environment's, given at init, never a second copy.
    assert "\nregion" not in example and '-backend-config="region=$AWS_REGION"' in example


def test_tfvars_example_sets_only_declared_variables(hcl: dict[str, dict[str, Any]]) -> None:
    variables = blocks(hcl, "variable")
    for line in (TF / "terraform.tfvars.example").read_text().splitlines():
        line = line.lstrip("# ").strip()
        if "=" in line and not line.startswith(("Copy", "Filled", "Who")):
            name = line.split("=")[0].strip()
            if name.isidentifier():
                assert name in variables, name
    assert Path(TF / "terraform.tfvars.example").exists()
