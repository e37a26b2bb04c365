"""Each namespace reads its own secrets with its own AWS role, and nothing
else can borrow ESO's.

External Secrets Operator, "AWS Access": a SecretStore with no auth block
uses the controller's own credentials (the AWS SDK chain of its pod), so any
namespace allowed to create a SecretStore reads whatever that role may read.
With auth.jwt.serviceAccountRef the controller requests a token of the named
service account in the store's namespace and assumes the role of its
eks.amazonaws.com/role-arn annotation (IRSA; serviceAccountRef cannot be used
with EKS Pod Identity, same page), so a role is trusted for one
namespace/service account (the OIDC sub claim, EKS user guide "Assign IAM
roles to Kubernetes service accounts"). ESO "Security Best Practices":
restrict who may create (Cluster)SecretStores and use a policy engine such
as Kyverno to restrict changes to SecretStores; "Deploying without
ClusterSecretStore and ClusterExternalSecret": crds.create* and process*
off."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import (
    K8S,
    REPO,
    TF,
    addon_values,
    environment,
    find_all,
    one,
    parse_tf,
    pod_identities,
    secret_readers,
)

RENDERER = REPO / "deploy/monitoring/kube-prometheus-stack/generate.py"


@pytest.fixture(scope="module")
def stores_and_secrets(
    rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Every SecretStore, ServiceAccount and ExternalSecret the prod overlays
    and the rendered monitoring apply."""
    out = tmp_path_factory.mktemp("monitoring")
    run([sys.executable, str(RENDERER), "--render", str(out)])
    text = run(["kubectl", "kustomize", str(out)]).stdout
    monitoring = [d for d in yaml.safe_load_all(text) if d]
    for doc in monitoring:
        doc["metadata"].setdefault("namespace", "monitoring")
    docs = [*rendered["prod"], *rendered["prod-bluegreen"], *monitoring]
    kinds = ("SecretStore", "ServiceAccount", "ExternalSecret", "ClusterSecretStore")
    return [d for d in docs if d["kind"] in kinds]


def test_every_store_uses_its_namespaces_own_role(
    stores_and_secrets: list[dict[str, Any]], hcl: dict[str, dict[str, Any]]
) -> None:
    readers = secret_readers(hcl)
    account = environment()["AWS_ACCOUNT_ID"]
    accounts = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in find_all(stores_and_secrets, "ServiceAccount")
    }
    stores = find_all(stores_and_secrets, "SecretStore")
    assert {s["metadata"]["namespace"] for s in stores} == {"pingpong", "monitoring"}
    assert not find_all(stores_and_secrets, "ClusterSecretStore")
    for store in stores:
        ns = store["metadata"]["namespace"]
        auth = store["spec"]["provider"]["aws"].get("auth")
        assert auth, f"SecretStore {ns}/{store['metadata']['name']} falls back to ESO's role"
        sa_name = auth["jwt"]["serviceAccountRef"]["name"]
        sa = accounts[(ns, sa_name)]
        arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        prefix = f"arn:aws:iam::{account}:role/"
        assert arn.startswith(prefix), arn
        reader = readers[arn[len(prefix) :]]
        assert (reader["namespace"], reader["service_account"]) == (ns, sa_name)
        wanted = {
            data["remoteRef"]["key"]
            for es in find_all(stores_and_secrets, "ExternalSecret")
            if es["metadata"]["namespace"] == ns
            and es["spec"]["secretStoreRef"]["name"] == store["metadata"]["name"]
            for data in es["spec"]["data"]
        }
        assert wanted and reader["secrets"] == wanted, (ns, reader["secrets"], wanted)


def test_the_controller_has_no_role_to_fall_back_on(hcl: dict[str, dict[str, Any]]) -> None:
    """No Pod Identity for ESO's own service account (and pods get no node
    role: IMDS hop limit 1), so a store without auth has no credentials at
    all; no cluster-wide stores or external secrets are served."""
    values = addon_values("external-secrets-values.yaml")
    sa = values["serviceAccount"]["name"]
    assert ("external-secrets", sa) not in {
        (p["namespace"], p["service_account"]) for p in pod_identities(hcl).values()
    }
    assert values["crds"]["createClusterSecretStore"] is False
    assert values["crds"]["createClusterExternalSecret"] is False
    assert values["processClusterStore"] is False
    assert values["processClusterExternalSecret"] is False


def test_admission_refuses_a_store_without_its_own_identity() -> None:
    """Kyverno ClusterPolicy (validate, failureAction Enforce: per rule since
    Kyverno 1.13): a SecretStore is admitted only with the AWS provider and
    auth.jwt.serviceAccountRef, in every namespace."""
    policy = yaml.safe_load((K8S / "policies" / "restrict-secret-stores.yaml").read_text())
    assert policy["kind"] == "ClusterPolicy"
    rule = one(policy["spec"]["rules"])
    kinds = one(rule["match"]["any"])["resources"]["kinds"]
    assert kinds == ["external-secrets.io/v1/SecretStore"]
    assert rule["validate"]["failureAction"] == "Enforce"
    pattern = rule["validate"]["pattern"]["spec"]["provider"]
    assert set(pattern) == {"aws"}
    assert pattern["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"] == "?*"
    kustomization = yaml.safe_load((K8S / "policies" / "kustomization.yaml").read_text())
    assert "restrict-secret-stores.yaml" in kustomization["resources"]


def test_the_walk_resolves_each_stores_identity(tmp_path: Path) -> None:
    """The first-release walk refuses a store without auth, and one whose
    service account's role does not grant what its ExternalSecrets read."""
    from .first_release import World, check_references

    world = World(scratch=tmp_path)
    store = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "other", "namespace": "pingpong"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "x"}}},
    }
    world.objects[("SecretStore", "pingpong", "other")] = store
    check_references(world, store, "a later step")
    assert [p for p in world.problems if "no AWS identity of its own" in p], world.problems


def test_each_role_trusts_one_service_account_token(tmp_path: Path) -> None:
    """IRSA (EKS user guide, "Assign IAM roles to Kubernetes service
    accounts"): AssumeRoleWithWebIdentity from the cluster's OIDC provider,
    the token's sub exactly system:serviceaccount:NAMESPACE:NAME and aud
    sts.amazonaws.com; without the sub condition any service account of the
    cluster could take the role."""
    module = parse_tf(TF / "modules" / "secret-reader-role" / "main.tf", tmp_path)
    docs = {k: v for d in module["data"] for k, v in d.get("aws_iam_policy_document", {}).items()}
    trust = one(docs["trust"]["statement"])
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert one(trust["principals"])["identifiers"] == ["${var.oidc_provider_arn}"]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in trust["condition"]}
    assert conditions == {
        "${var.oidc_provider}:sub": (
            "StringEquals",
            ["system:serviceaccount:${var.namespace}:${var.service_account}"],
        ),
        "${var.oidc_provider}:aud": ("StringEquals", ["sts.amazonaws.com"]),
    }
    read = docs["read"]["statement"]
    assert [s["resources"] for s in read] == ["${var.secret_arns}", ["${var.kms_key_arn}"]]
