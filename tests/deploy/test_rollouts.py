"""Argo Rollouts: blue-green with weighted ALB traffic in prod,
plain blueGreen as the alternative, and analysis that fails on missing data."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    analysis_query,
    arg_defaults,
    find,
    find_all,
    promtool_eval,
    with_args,
    workload,
)

METRIC_REQUESTS = "pingpong_http_requests_total"
METRIC_LATENCY = "pingpong_http_request_duration_seconds_bucket"


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


def evaluate(condition: str, result: list[float], args: dict[str, str]) -> bool:
    """Evaluate an Argo Rollouts (expr-lang) condition the way the controller
    would for a Prometheus vector result. Only the operators our templates use
    are translated; anything else is an error, not a guess."""
    expr = with_args(condition, args)
    assert re.fullmatch(r"[\w\s.\[\]()!<>=&|]+", expr), f"unexpected syntax in {condition!r}"
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    env = {"result": result, "len": len, "isNaN": math.isnan}
    try:
        return bool(eval(expr, {"__builtins__": {}}, env))  # noqa: S307 - translated, vetted expression
    except IndexError:
        # expr-lang errors out on result[0] of an empty result: a measurement
        # Error, which is not a success either.
        return False


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
    assert names == {"pingpong-success-rate", "pingpong-latency-p99"}
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


def test_success_rate_counts_429_as_success(templates: dict[str, dict[str, Any]]) -> None:
    t = templates["pingpong-success-rate"]
    (metric,) = t["spec"]["metrics"]
    query = metric["provider"]["prometheus"]["query"]
    selectors = re.findall(METRIC_REQUESTS + r"\{(.*?)\}\[2m\]", query, re.DOTALL)
    canary = [s for s in selectors if "{{args.canary-hash}}" in s]
    assert canary and all('route="/ping"' in s for s in selectors)
    # Only 5xx are failures: 429 (and every other non-5xx) stays in the
    # numerator; the denominator and the sample count take every status.
    assert sorted('status!~"5.."' in s for s in canary) == [False, False, True]
    assert not [s for s in selectors if "status" in s and 'status!~"5.."' not in s]
    assert "429" not in query and not re.search(r'status=~?"2', query)
    assert float(arg_defaults(t)["min-success-rate"]) >= 0.999  # the 99.9% SLA


def test_latency_is_p99_from_the_histogram(templates: dict[str, dict[str, Any]]) -> None:
    t = templates["pingpong-latency-p99"]
    (metric,) = t["spec"]["metrics"]
    query = " ".join(metric["provider"]["prometheus"]["query"].split())
    assert query.startswith("histogram_quantile(0.99,")
    assert "sum by (le) (rate(" + METRIC_LATENCY in query
    assert 'route="/ping"' in query and "{{args.canary-hash}}" in query
    assert float(arg_defaults(t)["max-p99-seconds"]) == 0.1  # the contract's SLO threshold


@pytest.mark.parametrize(
    ("template", "good", "bad", "empty"),
    [
        # The success rate is a margin over the baseline; no result means
        # too few requests: inconclusive (neither condition), which pauses the
        # rollout instead of aborting it.
        ("pingpong-success-rate", 0.0005, -0.01, None),
        ("pingpong-latency-p99", 0.05, 0.25, False),
    ],
)
def test_analysis_fails_on_missing_data_and_nan(
    templates: dict[str, dict[str, Any]], template: str, good: float, bad: float, empty: bool | None
) -> None:
    t = templates[template]
    (metric,) = t["spec"]["metrics"]
    args = arg_defaults(t)
    success, failure = metric["successCondition"], metric["failureCondition"]
    cases = {
        "good": ([good], True),
        "bad": ([bad], False),
        "no series": ([], empty),
        "no traffic (NaN)": ([math.nan], False),
    }
    for case, (result, passes) in cases.items():
        if passes is None:
            assert not evaluate(success, result, args), f"successCondition, {case}"
            assert not evaluate(failure, result, args), f"failureCondition, {case}"
            continue
        assert evaluate(success, result, args) is passes, f"successCondition, {case}"
        assert evaluate(failure, result, args) is not passes, f"failureCondition, {case}"
    # First failed measurement aborts; errors (Prometheus down) too, quickly.
    assert metric["failureLimit"] == 0
    assert metric["consecutiveErrorLimit"] <= 2
    assert duration_seconds(metric["initialDelay"]) >= 60, "let the 2m rate window fill first"


def test_smoke_template_checks_the_contract_endpoints(templates: dict[str, dict[str, Any]]) -> None:
    (metric,) = templates["pingpong-smoke"]["spec"]["metrics"]
    job = metric["provider"]["job"]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    for path in ("/readyz", "/healthz", "/ping", "/version"):
        assert f'"$base{path}"' in script
    assert '[ "$code" = 200 ] || [ "$code" = 429 ]' in script
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
        "pingpong-latency-p99",
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


def test_analysis_queries_run_in_prometheus(
    templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Evaluate the real queries with promtool on synthetic series: green
    ("new") serves 200s and 429s, blue ("old") fails; green's success rate
    must be 1 (429 is success, blue's errors are not green's), a green with
    5xx must fail, and p99 comes from green's histogram only."""
    success = analysis_query(templates["pingpong-success-rate"], {"canary-hash": "new"})
    failing = analysis_query(templates["pingpong-success-rate"], {"canary-hash": "bad"})
    latency = analysis_query(templates["pingpong-latency-p99"], {"canary-hash": "new"})
    labels = 'namespace="pingpong",rollouts_pod_template_hash="{h}",route="/ping",method="GET"'
    series = "pingpong_http_requests_total{{" + labels + ',status="{s}"}}'
    bucket = "pingpong_http_request_duration_seconds_bucket{{" + labels + ',le="{le}"}}'
    inputs = [
        (series.format(h="new", s="200"), "0+600x10"),
        (series.format(h="new", s="429"), "0+300x10"),
        (series.format(h="old", s="503"), "0+900x10"),
        (series.format(h="bad", s="200"), "0+900x10"),
        (series.format(h="bad", s="500"), "0+100x10"),
        (bucket.format(h="new", le="0.01"), "0+900x10"),
        (bucket.format(h="new", le="0.1"), "0+1000x10"),
        (bucket.format(h="new", le="+Inf"), "0+1000x10"),
        (bucket.format(h="old", le="0.01"), "0+0x10"),
        (bucket.format(h="old", le="0.1"), "0+0x10"),
        (bucket.format(h="old", le="+Inf"), "0+1000x10"),
    ]
    promtool_eval(
        tmp_path,
        inputs,
        [
            (f"({success}) >= bool 0", 1),
            (f"({failing}) < bool 0", 1),
            (f"({latency}) <= bool 0.1", 1),
            (f"({latency}) > bool 0.01", 1),
        ],
    )
