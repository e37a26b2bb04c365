"""Every Prometheus AnalysisTemplate, evaluated end to end on no traffic, low
traffic, a good version and a bad one: promtool runs the real query (and the
release recording rules it reads) on synthetic series at each measurement
time, and the Argo Rollouts model (argo_analysis, cited there) turns the
measurements into the run's phase and the rollout's action.

The promise: a quiet service never aborts a good release (it pauses for a
human: Inconclusive), a bad version is never promoted, and the guard needs
about 1.5 req/s on the new version (13-15 req/s in all at the 10 % step),
not 83."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from . import argo_analysis as argo
from . import helpers as mh

ANALYSIS = mh.REPO / "deploy" / "k8s" / "components" / "analysis"
SLO_RULES = mh.PROMETHEUS / "rules" / "pingpong-slo.yml"
MEASURED_FROM = 2  # minutes: the templates' initialDelay
STEPS_MINUTES = 10  # the canary's steps: 2 + 2 + 3 + 3 minutes of pauses


def template(name: str) -> dict[str, Any]:
    for path in ANALYSIS.glob("analysistemplate-*.yaml"):
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no AnalysisTemplate {name}")


def arg_defaults(t: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in t["spec"]["args"] if "value" in a}


def labels(version: str, extra: str = "") -> str:
    return (
        f'job="pingpong",namespace="pingpong",rollouts_pod_template_hash="{version}",'
        f'instance="{version}-1:9090",route="/ping",method="GET"{extra}'
    )


def requests(version: str, status: int, per_minute: float) -> tuple[str, str]:
    status_label = f',status="{status}"'
    return f"pingpong_http_requests_total{{{labels(version, status_label)}}}", f"0+{per_minute}x30"


def timed(version: str, per_minute: float, fast_per_minute: float) -> list[tuple[str, str]]:
    """The latency histogram: per_minute requests, fast_per_minute under 0.1 s."""
    base = labels(version)
    return [
        (f"pingpong_http_request_duration_seconds_count{{{base}}}", f"0+{per_minute}x30"),
        (
            f'pingpong_http_request_duration_seconds_bucket{{{base},le="0.1"}}',
            f"0+{fast_per_minute}x30",
        ),
        (
            f'pingpong_http_request_duration_seconds_bucket{{{base},le="+Inf"}}',
            f"0+{per_minute}x30",
        ),
    ]


def loop_lag(
    version: str, samples_per_minute: int, lagged_per_minute: int
) -> list[tuple[str, str]]:
    base = labels(version).removesuffix(',route="/ping",method="GET"')
    fast = samples_per_minute - lagged_per_minute
    return [
        (f"pingpong_event_loop_lag_seconds_count{{{base}}}", f"0+{samples_per_minute}x30"),
        (f'pingpong_event_loop_lag_seconds_bucket{{{base},le="0.1"}}', f"0+{fast}x30"),
    ]


def serving(version: str, ok_per_minute: int, failed_per_minute: int) -> list[tuple[str, str]]:
    """A version answering 200 and 500 at these rates."""
    return [
        requests(version, 200, ok_per_minute),
        requests(version, 500, failed_per_minute),
    ]


@dataclass(frozen=True)
class Case:
    """What the new version ("new") and the stable one ("old") serve, each
    measurement's expected class (S successful, F failed, I no result) and
    what the rollout does."""

    series: list[tuple[str, str]]
    classes: str
    action: str
    stable: str = "old"
    args: dict[str, str] = field(default_factory=dict)


STABLE_GOOD = [requests("old", 200, 6000), *timed("old", 6000, 6000)]

SUCCESS_RATE = {
    "no traffic": Case(STABLE_GOOD, "IIII", "pause"),
    "counters at zero": Case([*STABLE_GOOD, requests("new", 200, 0)], "IIII", "pause"),
    "low traffic, good (0.2 req/s)": Case(
        [*STABLE_GOOD, requests("new", 200, 12)], "IIII", "pause"
    ),
    "low traffic, one 5xx": Case(
        [
            *STABLE_GOOD,
            requests("new", 200, 12),
            ("pingpong_http_requests_total{" + labels("new", ',status="500"') + "}", "0x2 1x28"),
        ],
        "IIII",
        "pause",
    ),
    "low traffic, bad (50 % 5xx)": Case([*STABLE_GOOD, *serving("new", 6, 6)], "F", "abort"),
    "1.5 req/s, good (429s count as success)": Case(
        [*STABLE_GOOD, requests("new", 200, 60), requests("new", 429, 30)],
        "IIISSSSSSS",
        "continue",
    ),
    "busy, good (0.03 % 5xx)": Case(
        [*STABLE_GOOD, requests("new", 200, 2999), requests("new", 503, 1)],
        "SSSSSSSSSS",
        "continue",
    ),
    "busy, bad (1 % 5xx)": Case([*STABLE_GOOD, *serving("new", 2970, 30)], "F", "abort"),
    "busy, bad (1 % 5xx), blue-green post-promotion": Case(
        [*serving("new", 2970, 30)], "F", "abort", stable="none"
    ),
    "both versions 2 % 5xx (a shared cause)": Case(
        [*serving("old", 5880, 120), *serving("new", 2940, 60)],
        "IIII",
        "pause",
    ),
    "worse than a failing stable (10 % vs 2 %)": Case(
        [*serving("old", 5880, 120), *serving("new", 2700, 300)],
        "F",
        "abort",
    ),
}

LATENCY = {
    "no traffic": Case(STABLE_GOOD, "IIII", "pause"),
    "low traffic, fast (0.2 req/s)": Case(
        [*STABLE_GOOD, *timed("new", 12, 12)], "IISSSSSSSS", "continue"
    ),
    "low traffic, one slow request": Case(
        [
            *STABLE_GOOD,
            *timed("new", 12, 12)[::2],
            (
                f'pingpong_http_request_duration_seconds_bucket{{{labels("new")},le="0.1"}}',
                "0+12x2 35+12x27",
            ),
        ],
        "IIIIIISS",  # the slow request has left the 5-minute window at 8m
        "pause",
    ),
    "low traffic, 8 % slow": Case([*STABLE_GOOD, *timed("new", 12, 11)], "IIIF", "abort"),
    "low traffic, slow (50 %)": Case([*STABLE_GOOD, *timed("new", 12, 6)], "F", "abort"),
    "busy, fast": Case([*STABLE_GOOD, *timed("new", 3000, 2990)], "SSSSSSSSSS", "continue"),
    "busy, slow (5 %)": Case([*STABLE_GOOD, *timed("new", 3000, 2850)], "F", "abort"),
    "busy, queueing: fast in the app, event loop lagging 20 %": Case(
        [*STABLE_GOOD, *timed("new", 3000, 3000), *loop_lag("new", 60, 12)], "F", "abort"
    ),
    "busy, loop lag under 0.1 s": Case(
        [*STABLE_GOOD, *timed("new", 3000, 3000), *loop_lag("new", 60, 0)], "SSSSSSSSSS", "continue"
    ),
}


def promtool_classes(tmp_path: Path, name: str, cases: dict[str, Case]) -> None:
    """The template's query, run by promtool at each measurement: 1 for a
    margin >= 0 (successful), 0 for < 0 (failed), no sample for none."""
    t = template(name)
    (metric,) = t["spec"]["metrics"]
    defaults = arg_defaults(t)
    tests = []
    for title, case in cases.items():
        args = {**defaults, "canary-hash": "new", "stable-hash": case.stable, **case.args}
        query = argo.with_args(metric["provider"]["prometheus"]["query"], args)
        checks = [
            {
                "expr": f"({query}) >= bool 0",
                "eval_time": f"{MEASURED_FROM + i}m",
                "exp_samples": [] if c == "I" else [{"labels": "{}", "value": int(c == "S")}],
            }
            for i, c in enumerate(case.classes)
        ]
        tests.append(
            {
                "name": title,
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "promql_expr_test": checks,
            }
        )
    spec = {"rule_files": [str(SLO_RULES)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / f"{name}.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run([mh.PROMTOOL, "test", "rules", str(path)])


# A result the query can give in each class (promtool proved the class; the
# sign is what the conditions read).
RESULTS = {"S": [0.0004], "F": [-0.009], "I": []}


def argo_outcome(name: str, case: Case) -> str:
    t = template(name)
    (metric,) = t["spec"]["metrics"]
    defaults = arg_defaults(t)
    # The canary's background analysis (measurements 30, stopped when the
    # steps end) or the blue-green post-promotion run (5, to the end).
    background = case.stable != "none"
    args = {**defaults, "measurements": "30" if background else defaults["measurements"]}
    classes = case.classes
    if background and len(classes) < STEPS_MINUTES and argo.FAILED not in classes:
        classes += classes[-1] * (STEPS_MINUTES - len(classes))
    phases = [argo.measurement(metric, args, RESULTS[c]) for c in classes]
    return argo.rollout_action(argo.metric_phase(metric, args, phases, terminated=background))


@pytest.mark.parametrize(
    ("name", "cases"),
    [("pingpong-success-rate", SUCCESS_RATE), ("pingpong-latency", LATENCY)],
)
def test_each_measurement_decides_only_on_evidence(
    tmp_path: Path, name: str, cases: dict[str, Case]
) -> None:
    promtool_classes(tmp_path, name, cases)


@pytest.mark.parametrize(
    ("name", "case"),
    [
        *(("pingpong-success-rate", c) for c in SUCCESS_RATE.values()),
        *(("pingpong-latency", c) for c in LATENCY.values()),
    ],
    ids=[*(f"success-rate:{k}" for k in SUCCESS_RATE), *(f"latency:{k}" for k in LATENCY)],
)
def test_the_rollout_pauses_aborts_or_goes_on_as_the_evidence_says(name: str, case: Case) -> None:
    assert argo_outcome(name, case) == case.action


@pytest.mark.parametrize("name", ["pingpong-success-rate", "pingpong-latency"])
def test_conditions_on_every_shape_of_result(name: str) -> None:
    """An empty result (no data) and NaN are Inconclusive, never Failed or
    an Error; a sign decides the rest."""
    (metric,) = template(name)["spec"]["metrics"]
    for result, expected in [
        ([], argo.INCONCLUSIVE),
        ([math.nan], argo.INCONCLUSIVE),
        ([0.0], argo.SUCCESSFUL),
        ([0.0004], argo.SUCCESSFUL),
        ([-0.0001], argo.FAILED),
        ([0.1, 0.2], argo.INCONCLUSIVE),
    ]:
        assert argo.measurement(metric, {}, result) == expected, result


@pytest.mark.parametrize("name", ["pingpong-success-rate", "pingpong-latency"])
def test_an_all_inconclusive_run_is_never_a_success(name: str) -> None:
    """Post-promotion runs end after ``count`` measurements: if the
    inconclusive ones could all fit under inconclusiveLimit, a release with
    no evidence at all would be promoted (assessMetricStatus: count reached
    -> Successful)."""
    t = template(name)
    (metric,) = t["spec"]["metrics"]
    defaults = arg_defaults(t)
    phases = [argo.INCONCLUSIVE] * int(defaults["measurements"])
    assert argo.metric_phase(metric, defaults, phases) == argo.INCONCLUSIVE
    # ...and the background run pauses before the canary's steps end.
    assert int(metric["inconclusiveLimit"]) < STEPS_MINUTES - MEASURED_FROM


def test_prometheus_down_aborts_after_the_error_limit() -> None:
    """Query errors (Prometheus unreachable: no volume, blocker of the first
    release) count as consecutive errors: the third aborts."""
    for name in ("pingpong-success-rate", "pingpong-latency"):
        t = template(name)
        (metric,) = t["spec"]["metrics"]
        args = arg_defaults(t)
        assert argo.metric_phase(metric, args, [argo.ERROR] * 2) == argo.RUNNING
        assert argo.metric_phase(metric, args, [argo.ERROR] * 3) == argo.ERROR
        assert argo.rollout_action(argo.ERROR) == "abort"
