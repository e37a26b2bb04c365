"""deploy/k8s networking: default-deny NetworkPolicies opened only where the
service needs it, the Ingress for the AWS Load Balancer Controller, and only
the ALB's subnets trusted to name a client."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
import yaml

from .helpers import OVERLAYS, REPO, captured, find, find_all, workload


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_default_deny_plus_needed(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    policies = {p["metadata"]["name"]: p["spec"] for p in find_all(docs, "NetworkPolicy")}
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    app = policies["pingpong"]
    ports = [p["port"] for rule in app["ingress"] for p in rule["ports"]]
    assert set(ports) == {"http", "metrics", "admin"}, "only the service's three ports are open"
    metrics_from = [r["from"] for r in app["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert metrics_from == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    ]
    admin_from = [rule["from"] for rule in app["ingress"] if rule["ports"][0]["port"] == "admin"]
    assert admin_from == [  # the admin API only from the operators' namespace
        [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "pingpong-operators"}
                }
            }
        ]
    ]
    egress_ports = {p["port"] for rule in app["egress"] for p in rule["ports"]}
    assert {53, 6379} <= egress_ports


def test_service_account_has_no_token(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay in OVERLAYS:
        sa = find(rendered[overlay], "ServiceAccount", "pingpong")
        assert sa["automountServiceAccountToken"] is False
        assert (
            workload(rendered[overlay])["spec"]["template"]["spec"]["serviceAccountName"]
            == "pingpong"
        )


def test_ingress_is_for_the_aws_load_balancer_controller(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay in ("dev", "prod"):
        ing = find(rendered[overlay], "Ingress", "pingpong")
        assert ing["spec"]["ingressClassName"] == "alb"
        a = ing["metadata"]["annotations"]
        assert a["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert a["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    prod = find(rendered["prod"], "Ingress", "pingpong")
    assert prod["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert json.loads(
        prod["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"]
    ) == [{"HTTP": 80}, {"HTTPS": 443}]


def terraform_subnets(kind: str) -> list[str]:
    """The CIDRs deploy/terraform/main.tf gives the VPC module's ``kind``
    subnets: cidrsubnet(var.vpc_cidr, 8, OFFSET + i), one per zone."""
    variables = (REPO / "deploy" / "terraform" / "variables.tf").read_text()
    vpc = ipaddress.ip_network(
        captured(r'variable "vpc_cidr" \{.*?default\s*=\s*"([^"]+)"', variables, re.S)
    )
    main = (REPO / "deploy" / "terraform" / "main.tf").read_text()
    offset = int(captured(rf"{kind}_subnets\s*=.*cidrsubnet\(var.vpc_cidr, 8, (\d+) \+ i\)", main))
    subnets = list(vpc.subnets(new_prefix=vpc.prefixlen + 8))
    return [str(subnets[offset + i]) for i in range(3)]


def test_only_the_alb_subnets_are_trusted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """AWS ELB user guide, "Subnets for your Application Load Balancer": the
    load balancer's nodes (with target-type ip, the peers of the pods) have
    addresses in the subnets it is created in, the public ones (the AWS Load
    Balancer Controller picks subnets tagged kubernetes.io/role/elb). Only
    those may reach the public port and set X-Forwarded-For: trusting the
    whole VPC lets any pod choose any client identity. Redis is reached in
    the database subnets only."""
    docs = rendered["prod"]
    policy = find(docs, "NetworkPolicy", "pingpong")["spec"]

    def cidrs(rule_set: str, port: str | int) -> list[str]:
        return [
            peer["ipBlock"]["cidr"]
            for rule in policy[rule_set]
            if any(p["port"] == port for p in rule.get("ports", []))
            for peer in rule.get("from", []) + rule.get("to", [])
            if "ipBlock" in peer
        ]

    public = terraform_subnets("public")
    assert cidrs("ingress", "http") == public
    assert cidrs("egress", 6379) == terraform_subnets("database")
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert yaml.safe_load(cm["data"]["config.yaml"])["trusted_proxies"] == public
