"""Argo Rollouts: blue-green with weighted ALB traffic in prod,
plain blueGreen as the alternative, and analysis that fails on missing data."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from .helpers import REPO, arg_defaults, find, find_all, workload

SLO_RULES = REPO / "deploy" / "monitoring" / "prometheus" / "rules" / "pingpong-slo.yml"


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["prod"]


@pytest.fixture(scope="module")
def templates(prod: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["metadata"]["name"]: t for t in find_all(prod, "AnalysisTemplate")}


def test_prod_canary_shifts_alb_traffic_10_25_50_100(prod: list[dict[str, Any]]) -> None:
    canary = workload(prod)["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == [10, 25, 50, 100]
    # A timed pause after every weight: traffic stays there while analysed.
    for i, step in enumerate(steps):
        if "setWeight" in step:
            assert duration_seconds(steps[i + 1]["pause"]["duration"]) >= 60, step
    # Both versions at full size: green is scaled to 100% before any traffic,
    # and blue keeps its size until the end.
    first_weight = next(i for i, s in enumerate(steps) if "setWeight" in s)
    assert {"setCanaryScale": {"weight": 100}} in steps[:first_weight]
    assert canary.get("dynamicStableScale", False) is False
    assert canary["maxUnavailable"] == 0


def test_prod_canary_routes_through_the_alb_ingress(prod: list[dict[str, Any]]) -> None:
    canary = workload(prod)["spec"]["strategy"]["canary"]
    alb = canary["trafficRouting"]["alb"]
    ingress = find(prod, "Ingress", alb["ingress"])
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": alb["rootService"], "port": {"name": "use-annotation"}}
    ping_pong = canary["pingPong"]
    services = (ping_pong["pingService"], ping_pong["pongService"], canary["canaryService"])
    for svc in (*services, alb["rootService"]):
        assert find(prod, "Service", svc)["spec"]["ports"][0]["port"] == alb["servicePort"]


def test_prod_canary_is_analysed_from_the_first_traffic_step(
    prod: list[dict[str, Any]], templates: dict[str, dict[str, Any]]
) -> None:
    canary = workload(prod)["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    analysis = canary["analysis"]
    first_weight = next(i for i, s in enumerate(steps) if "setWeight" in s)
    assert analysis["startingStep"] <= first_weight
    names = {t["templateName"] for t in analysis["templates"]}
    assert names == {"pingpong-success-rate", "pingpong-latency"}
    assert names <= set(templates)
    args = {a["name"]: a for a in analysis["args"]}
    assert args["canary-hash"]["valueFrom"] == {"podTemplateHashValue": "Latest"}
    # The background analysis outlives the steps (it stops when they end).
    pauses = sum(
        duration_seconds(s["pause"]["duration"]) for s in steps[first_weight:] if "pause" in s
    )
    for name in names:
        metric = templates[name]["spec"]["metrics"][0]
        measured = int(args["measurements"]["value"]) * duration_seconds(metric["interval"])
        assert measured >= pauses
    # A smoke test of green through its own Service before any traffic.
    smoke = [s["analysis"] for s in steps[:first_weight] if "analysis" in s]
    assert smoke and smoke[0]["templates"] == [{"templateName": "pingpong-smoke"}]
    assert smoke[0]["args"] == [{"name": "service", "value": canary["canaryService"]}]


def test_analysis_reads_the_release_counts_of_the_new_version(
    templates: dict[str, dict[str, Any]],
) -> None:
    """Both templates read the release rules' counts of the new version and
    of stable (the baseline); how they decide is evaluated end to end in
    tests/monitoring/test_analysis_templates.py."""
    recorded = {
        "pingpong-success-rate": (
            "hash:pingpong_ping_errors:increase5m",
            "hash:pingpong_ping_requests:increase5m",
        ),
        "pingpong-latency": (
            "hash:pingpong_ping_slow:increase5m",
            "hash:pingpong_ping_timed:increase5m",
        ),
    }
    for name, series in recorded.items():
        (metric,) = templates[name]["spec"]["metrics"]
        query = re.sub(r"\{\s+", "{", metric["provider"]["prometheus"]["query"])
        for s in series:
            for version in ("canary-hash", "stable-hash"):
                selector = f'rollouts_pod_template_hash="{{{{args.{version}}}}}"'
                assert f'{s}{{namespace="{{{{args.namespace}}}}", {selector}}}' in query
    defaults = {name: arg_defaults(t) for name, t in templates.items()}
    assert float(defaults["pingpong-success-rate"]["max-error-ratio"]) <= 0.001  # 99.9 %
    assert float(defaults["pingpong-latency"]["max-slow-ratio"]) <= 0.01  # 99 % under 0.1 s


def test_only_5xx_count_against_a_release() -> None:
    """429 is the limiter working: the release's error count is 5xx only."""
    rules = yaml.safe_load(SLO_RULES.read_text())["groups"][0]["rules"]
    errors = next(r for r in rules if r.get("record") == "hash:pingpong_ping_errors:increase5m")
    assert 'status=~"5.."' in errors["expr"] and "429" not in errors["expr"]


def test_smoke_template_checks_the_contract_endpoints(templates: dict[str, dict[str, Any]]) -> None:
    (metric,) = templates["pingpong-smoke"]["spec"]["metrics"]
    job = metric["provider"]["job"]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    for path in ("/readyz", "/healthz", "/ping"):
        assert f'base + "{path}"' in script
    assert 'metrics + "/version"' in script and 'base + "/version"' not in script
    assert "if code not in (200, 429):" in script  # test_smoke_job.py runs it for real
    assert job["spec"]["backoffLimit"] == 0 and metric["failureLimit"] == 0
    # The NetworkPolicy lets exactly these pods reach pingpong.
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/component": "smoke-test"
    }


def test_podmonitor_labels_series_with_the_pod_template_hash(prod: list[dict[str, Any]]) -> None:
    pm = find(prod, "PodMonitor", "pingpong")["spec"]
    assert "rollouts-pod-template-hash" in pm["podTargetLabels"]
    assert pm["podMetricsEndpoints"][0]["port"] == "metrics"  # metrics_port 9090
    assert pm["podMetricsEndpoints"][0]["path"] == "/metrics"
    # The monitoring rules select job="pingpong": the pod's name label gives it.
    assert pm["jobLabel"] == "app.kubernetes.io/name"
    pod_labels = workload(prod)["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == "pingpong"


def test_bluegreen_alternative_has_pre_and_post_promotion_analysis(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["prod-bluegreen"]
    rollout = workload(docs)
    assert set(rollout["spec"]["strategy"]) == {"blueGreen"}
    bg = rollout["spec"]["strategy"]["blueGreen"]
    find(docs, "Service", bg["activeService"])
    find(docs, "Service", bg["previewService"])
    pre = bg["prePromotionAnalysis"]
    assert pre["templates"] == [{"templateName": "pingpong-smoke"}]
    assert pre["args"] == [{"name": "service", "value": bg["previewService"]}]
    post = bg["postPromotionAnalysis"]
    assert {t["templateName"] for t in post["templates"]} == {
        "pingpong-success-rate",
        "pingpong-latency",
    }
    # Blue must still be there when post-promotion analysis fails, to switch back.
    templates = {t["metadata"]["name"]: t for t in find_all(docs, "AnalysisTemplate")}
    longest = 0
    for ref in post["templates"]:
        t = templates[ref["templateName"]]
        (metric,) = t["spec"]["metrics"]
        count = int(arg_defaults(t)["measurements"])
        longest = max(
            longest,
            duration_seconds(metric["initialDelay"]) + count * duration_seconds(metric["interval"]),
        )
    assert bg["scaleDownDelaySeconds"] > longest
    # No ALB controller assumed on this path.
    assert find(docs, "Ingress", "pingpong")["spec"]["ingressClassName"] != "alb"


METRICS_PORT = 9090


def _ingress_ports(policy: dict[str, Any], namespace: str) -> set[Any]:
    return {
        p["port"]
        for rule in policy["spec"]["ingress"]
        if any(
            f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            == namespace
            for f in rule["from"]
        )
        for p in rule["ports"]
    }


def test_metrics_and_version_are_read_on_the_metrics_port(prod: list[dict[str, Any]]) -> None:
    """The agreed split: with metrics_port set, /metrics and /version are
    served only there (9090); the public port keeps /ping and the probes.
    Prometheus (the PodMonitor), the smoke test's /version and the
    NetworkPolicies must all use it."""
    container = workload(prod)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PINGPONG_METRICS_PORT"] == str(METRICS_PORT)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == METRICS_PORT
    endpoint = find(prod, "PodMonitor", "pingpong")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert "metrics" in _ingress_ports(find(prod, "NetworkPolicy", "pingpong"), "monitoring")
    # The smoke Job reads /version through the canary Service's metrics port.
    canary = find(prod, "Service", "pingpong-canary")
    assert {p["name"]: p["port"] for p in canary["spec"]["ports"]}["metrics"] == METRICS_PORT
    templates = {t["metadata"]["name"]: t for t in find_all(prod, "AnalysisTemplate")}
    (metric,) = templates["pingpong-smoke"]["spec"]["metrics"]
    script = metric["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert f'metrics = "http://{{{{args.service}}}}:{METRICS_PORT}"' in script
    assert 'metrics + "/version"' in script
    egress = find(prod, "NetworkPolicy", "smoke-test")["spec"]["egress"]
    assert METRICS_PORT in {p["port"] for rule in egress for p in rule.get("ports", [])}


def test_compose_and_prometheus_scrape_the_metrics_port() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert compose["x-pingpong"]["environment"]["PINGPONG_METRICS_PORT"] == str(METRICS_PORT)
    prometheus = yaml.safe_load(
        (REPO / "deploy" / "monitoring" / "prometheus" / "prometheus.yml").read_text()
    )
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "pingpong"]
    assert job["dns_sd_configs"][0]["port"] == METRICS_PORT


COMPONENTS = REPO / "deploy" / "k8s" / "components"


def test_deployment_to_rollout_is_written_once() -> None:
    """Both strategy components reuse one component for the kind change and
    the HPA's target; each only sets its strategy (and its Services)."""
    shared = yaml.safe_load((COMPONENTS / "rollout" / "kustomization.yaml").read_text())
    kinds = {p["target"]["kind"] for p in shared["patches"]}
    assert kinds == {"Deployment", "Rollout", "HorizontalPodAutoscaler"}
    for name in ("rollout-canary-alb", "rollout-bluegreen"):
        component = yaml.safe_load((COMPONENTS / name / "kustomization.yaml").read_text())
        assert component["components"] == ["../rollout"], name
        targets = {p["target"]["kind"] for p in component["patches"]}
        assert targets <= {"Rollout", "Ingress"}, name


def without_strategy(rollout: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rollout["spec"].items() if k != "strategy"}


def test_both_strategies_share_everything_but_the_strategy(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    canary, bluegreen = (workload(rendered[o]) for o in ("prod", "prod-bluegreen"))
    assert set(canary["spec"]["strategy"]) == {"canary"}
    assert set(bluegreen["spec"]["strategy"]) == {"blueGreen"}
    for rollout in (canary, bluegreen):
        assert rollout["spec"]["progressDeadlineAbort"] is True
    assert without_strategy(canary) == without_strategy(bluegreen)
