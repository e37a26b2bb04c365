"""The PrometheusRules and the Alertmanager chart values that reach the
cluster are the tested sources, unchanged (one source of truth: promtool and
amtool test the files under deploy/monitoring, and the Prometheus Operator
loads PrometheusRule.spec.groups exactly as a rule file's groups, per its API
reference)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from pingpong_toolkit.commands import run

from . import helpers as mh

KPS = mh.REPO / "deploy" / "monitoring" / "kube-prometheus-stack"


def test_generated_files_are_current() -> None:
    run([sys.executable, str(KPS / "generate.py"), "--check"])


def test_prometheus_rules_equal_the_rule_files() -> None:
    generated = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((KPS / "prometheusrules.yaml").read_text())
    }
    sources = sorted(Path(mh.REPO / "deploy/monitoring/prometheus/rules").glob("*.yml"))
    assert sorted(generated) == [p.stem for p in sources]
    for path in sources:
        assert generated[path.stem]["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]


STORAGE_CLASS = mh.MONITORING / "storageclass-gp3.yaml"


def test_prometheus_volume_has_a_storage_class_and_a_driver() -> None:
    """The PVC of kube-prometheus-stack's Prometheus names a StorageClass the
    repo defines, served by the EBS CSI driver (provisioner ebs.csi.aws.com,
    kubernetes-sigs/aws-ebs-csi-driver docs/parameters.md), which terraform
    installs as the EKS add-on aws-ebs-csi-driver with a Pod Identity role for
    its controller's service account ebs-csi-controller-sa (EKS user guide,
    "Amazon EBS CSI driver": the add-on needs an IAM role with
    AmazonEBSCSIDriverPolicy). docs/deploy.md applies the class before the chart."""
    values = yaml.safe_load((KPS / "values.yaml").read_text())
    claim = values["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    storage_class = yaml.safe_load(STORAGE_CLASS.read_text())
    assert storage_class["kind"] == "StorageClass"
    assert storage_class["metadata"]["name"] == claim["storageClassName"]
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    run(["kubernetes-validate", "--strict", str(STORAGE_CLASS)])

    addons = (mh.REPO / "deploy" / "terraform" / "addons.tf").read_text()
    addon = re.search(r'resource "aws_eks_addon" "ebs_csi" \{(.*?)^\}', addons, re.M | re.S)
    assert addon, "no aws-ebs-csi-driver add-on"
    assert 'addon_name   = "aws-ebs-csi-driver"' in addon.group(1)
    assert 'service_account = "ebs-csi-controller-sa"' in addon.group(1)
    role = re.search(r"role_arn\s*=\s*module\.(\w+)\.iam_role_arn", addon.group(1))
    assert role, "the add-on's controller has no Pod Identity role"
    module = re.search(rf'module "{role.group(1)}" \{{(.*?)^\}}', addons, re.M | re.S)
    assert module and "attach_aws_ebs_csi_policy = true" in module.group(1)

    steps = mh.DEPLOY_DOC.read_text()
    applied = steps.find(f"kubectl apply -f {STORAGE_CLASS.relative_to(mh.REPO)}")
    assert 0 <= applied < steps.index("helm upgrade --install kube-prometheus-stack")
