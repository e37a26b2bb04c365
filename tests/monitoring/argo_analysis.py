"""How Argo Rollouts judges an analysis metric, as its controller does it.

No Argo controller runs here, so its documented evaluation is encoded from
the source (argoproj/argo-rollouts):

- one measurement, utils/evaluate/evaluate.go ``EvaluateResult``: an
  expression that cannot be evaluated (``result[0]`` of an empty result) is a
  measurement Error; failureCondition true is Failed; successCondition true
  (and not failed) is Successful; neither is Inconclusive;
- the metric, analysis/analysis.go ``assessMetricStatus`` and
  ``assessMetricFailureInconclusiveOrError``: Failed once failed >
  failureLimit (default 0), Inconclusive once inconclusive > inconclusiveLimit
  (default 0), Error once consecutive errors > consecutiveErrorLimit (default
  4, utils/defaults/defaults.go), Successful once ``count`` measurements are
  taken, and Successful when terminated early (the background analysis of a
  canary ends with its steps);
- the rollout, rollout/analysis.go: an Inconclusive run pauses the rollout
  (PauseReasonInconclusiveAnalysis), an Error or Failed run aborts it.

The Prometheus provider hands the conditions a vector as a list of floats
(metricproviders/prometheus/prometheus.go ``processResponse``): an empty
result is ``[]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR, RUNNING = (
    "Successful",
    "Failed",
    "Inconclusive",
    "Error",
    "Running",
)
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4


class ExpressionError(Exception):
    """expr-lang could not evaluate a condition (a measurement Error)."""


def with_args(text: str, args: Mapping[str, str]) -> str:
    return ARG.sub(lambda m: args[m.group(1)], text)


def condition(expression: str, result: Sequence[float]) -> bool:
    """An expr-lang condition of our templates, on a vector result. Only the
    syntax they use is translated; anything else fails the test."""
    if not re.fullmatch(r"[\w\s.\[\]()!<>=&|-]+", expression):
        raise AssertionError(f"unexpected syntax in {expression!r}")
    python = expression.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    env = {"result": list(result), "len": len, "isNaN": math.isnan}
    try:
        return bool(eval(python, {"__builtins__": {}}, env))  # noqa: S307 - vetted translation
    except IndexError as error:
        raise ExpressionError(str(error)) from error


def measurement(metric: Mapping[str, Any], args: Mapping[str, str], result: Sequence[float]) -> str:
    """EvaluateResult for a metric with both conditions set."""
    try:
        success = condition(with_args(metric["successCondition"], args), result)
        failure = condition(with_args(metric["failureCondition"], args), result)
    except ExpressionError:
        return ERROR
    if failure:
        return FAILED
    return SUCCESSFUL if success else INCONCLUSIVE


def _limit(metric: Mapping[str, Any], args: Mapping[str, str], key: str, default: int) -> int:
    value = metric.get(key)
    return default if value is None else int(with_args(str(value), args))


def metric_phase(
    metric: Mapping[str, Any],
    args: Mapping[str, str],
    measurements: Sequence[str],
    terminated: bool = False,
) -> str:
    """The metric's phase once these measurements are taken in order: the
    first completed phase, assessed after every measurement as the controller
    does on each reconcile."""
    failure_limit = _limit(metric, args, "failureLimit", 0)
    inconclusive_limit = _limit(metric, args, "inconclusiveLimit", 0)
    error_limit = _limit(metric, args, "consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    count = _limit(metric, args, "count", 0)
    failed = inconclusive = consecutive_errors = 0
    for taken, phase in enumerate(measurements, start=1):
        failed += phase == FAILED
        inconclusive += phase == INCONCLUSIVE
        consecutive_errors = consecutive_errors + 1 if phase == ERROR else 0
        verdict = ""
        if failure_limit >= 0 and failed > failure_limit:
            verdict = FAILED
        if inconclusive > inconclusive_limit:
            verdict = INCONCLUSIVE
        if consecutive_errors > error_limit:
            verdict = ERROR
        if verdict:
            return verdict
        if count and taken >= count:
            return SUCCESSFUL
    return SUCCESSFUL if terminated else RUNNING


def rollout_action(run_phase: str) -> str:
    """What the rollout controller does with an AnalysisRun in this phase."""
    return {INCONCLUSIVE: "pause", FAILED: "abort", ERROR: "abort"}.get(run_phase, "continue")
