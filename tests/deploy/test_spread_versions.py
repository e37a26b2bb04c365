"""A release at peak must not leave green Pending: the cluster's version, the
spread constraints and Karpenter have to agree on which pods a constraint
counts.

What upstream documents:
- Kubernetes docs, "Pod Topology Spread Constraints" (matchLabelKeys), and
  KEP-3243 (https://www.kubernetes.dev/resources/keps/3243/; kubernetes/
  enhancements keps/sig-scheduling/3243-respect-pod-topology-spread-after-
  rolling-upgrades, PR #5205, "[v1.34] design change"): from 1.34 the
  kube-apiserver merges ``key in (value)`` of each matchLabelKeys label into
  the pod's labelSelector at pod creation (feature gate
  MatchLabelKeysInPodTopologySpreadSelectorMerge, beta, on by default);
  before 1.34 only kube-scheduler reads matchLabelKeys, and labelSelector
  stays the plain app selector. matchLabelKeys needs a labelSelector, and a
  key may not be in both.
- Karpenter ignores matchLabelKeys (karpenter.sh docs, Upgrading >
  Compatibility: "Karpenter currently does not support ... matchLabelKeys";
  kubernetes-sigs/karpenter#1569, open: during a rolling update Karpenter
  nominates nodes by the skew of both ReplicaSets while the scheduler counts
  one, and the pod stays Pending). It does honour a plain labelSelector.
- Karpenter 1.6 supports Kubernetes 1.29 - 1.34 (karpenter.sh compatibility
  matrix; endoflife.date/karpenter).

So on 1.34+ the selector Karpenter reads already carries green's template
hash, and both count green alone. On 1.33 the two disagree, and a
DoNotSchedule zone spread can keep green Pending until the progress deadline
aborts the release: the cluster version is the fix, and this test holds the
three together."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import ADDONS, blocks, workload

MERGED_FROM = (1, 34)  # MatchLabelKeysInPodTopologySpreadSelectorMerge beta, on
# Karpenter minor -> the newest Kubernetes minor it supports (compatibility matrix).
KARPENTER_SUPPORTS = {(1, 5): (1, 33), (1, 6): (1, 34), (1, 7): (1, 34), (1, 8): (1, 34)}
VERSION_LABEL = "rollouts-pod-template-hash"  # Argo Rollouts' per-version label


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.split(".")
    return int(major), int(minor_)


def cluster_version(hcl: dict[str, dict[str, Any]]) -> tuple[int, int]:
    return minor(blocks(hcl, "variable")["kubernetes_version"]["default"])


def chart_version(name: str) -> str:
    for line in (ADDONS / "chart-versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} not in chart-versions.env")


@pytest.mark.parametrize("overlay", ["prod", "prod-bluegreen"])
def test_each_version_spreads_alone_for_the_scheduler_and_karpenter(
    rendered: dict[str, list[dict[str, Any]]], hcl: dict[str, dict[str, Any]], overlay: str
) -> None:
    spec = workload(rendered[overlay])["spec"]["template"]["spec"]
    constraints = spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for constraint in constraints:
        keys = constraint.get("matchLabelKeys", [])
        assert VERSION_LABEL in keys, "blue's pods would count against green's skew"
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector and not set(selector) & set(keys), "merge needs a selector, no key twice"
        if constraint["whenUnsatisfiable"] == "DoNotSchedule":
            assert cluster_version(hcl) >= MERGED_FROM, (
                f"{constraint['topologyKey']}: Karpenter counts blue and green together "
                "until the API server merges matchLabelKeys (1.34)"
            )


def test_karpenter_supports_the_cluster_version(hcl: dict[str, dict[str, Any]]) -> None:
    karpenter = minor(chart_version("KARPENTER_CHART"))
    assert karpenter in KARPENTER_SUPPORTS, f"Karpenter {karpenter}: look up its matrix"
    assert cluster_version(hcl) <= KARPENTER_SUPPORTS[karpenter]
