"""What green's own /metrics say about a time window, and whether that passes.

Read straight from the process (no Prometheus in between: nothing to scrape
late, no rule to deploy), as two snapshots of the counters whose difference is
the window. The SLIs are the contract's (docs/monitoring.md):

- error ratio = 5xx / all answers on route="/ping" (a 429 is the service doing
  its job: a success). Green's own shed 503s are among them: behind a balancer
  that bounds each slot below max_in_flight, a slot sheds only when its loop
  lags, a slow or broken green. HAProxy's sheds never reach green and are not
  counted: excess load it refuses whichever version runs (docs/bluegreen.md);
- p99 latency from the pingpong_http_request_duration_seconds buckets, the way
  Prometheus' histogram_quantile() reads them.

A window without requests, or a scrape that failed, is a failure: a green that
got no traffic has proven nothing, and a green that cannot be read cannot be
trusted (the Argo AnalysisTemplate of deploy/k8s is NaN-safe the same way).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROUTE = "/ping"
REQUESTS = "pingpong_http_requests"  # the parser strips the counter's _total
DURATION = "pingpong_http_request_duration_seconds"


@dataclass(frozen=True)
class Snapshot:
    """Cumulative /ping counters of one process at one moment."""

    by_status: Counter[str] = field(default_factory=Counter)
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    def __sub__(self, earlier: Snapshot) -> Snapshot:
        by_status = Counter(self.by_status)
        by_status.subtract(earlier.by_status)
        buckets = {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()}
        return Snapshot(by_status, buckets)

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status.startswith("5"))

    @property
    def reset(self) -> bool:
        """A negative delta: the process restarted in between, the window is void."""
        return any(n < 0 for n in self.by_status.values())

    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    def quantile(self, q: float) -> float | None:
        """histogram_quantile(q): linear inside the bucket that holds the rank."""
        points = sorted(self.buckets.items())
        if not points or points[-1][1] <= 0:
            return None
        rank = q * points[-1][1]
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in points:
            if count >= rank:
                if math.isinf(bound):  # beyond the last finite bucket: its bound
                    return lower_bound
                width = count - lower_count
                share = (rank - lower_count) / width if width > 0 else 1.0
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, count
        return lower_bound


def parse(text: str) -> Snapshot:
    """The /ping series of one exposition, summed over methods (GET and HEAD)."""
    by_status: Counter[str] = Counter()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (REQUESTS, DURATION):
            continue
        for sample in family.samples:
            if sample.labels.get("route") != ROUTE:
                continue
            if sample.name == REQUESTS + "_total":
                by_status[sample.labels["status"]] += int(sample.value)
            elif sample.name == DURATION + "_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Snapshot(by_status, buckets)


def scrape(base_url: str, timeout: float = 2.0, attempts: int = 3) -> Snapshot | None:
    """GET <base_url>/metrics; None when the process cannot be read (after a few
    tries: one slow answer on a busy machine is not "no data")."""
    for attempt in range(attempts):
        try:
            response = httpx.get(base_url.rstrip("/") + "/metrics", timeout=timeout)
            response.raise_for_status()
            return parse(response.text)
        except (httpx.HTTPError, ValueError):
            if attempt + 1 < attempts:
                time.sleep(0.1)
    return None


@dataclass(frozen=True)
class Thresholds:
    max_error_ratio: float
    max_p99: float  # seconds
    min_requests: int  # fewer in a step: "no data", a failure


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    requests: int
    error_ratio: float | None
    p99: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "requests": self.requests,
            "error_ratio": self.error_ratio,
            "p99": self.p99,
        }


def judge(window: Snapshot | None, limits: Thresholds) -> Verdict:
    """Pass only on enough requests, few enough 5xx and a low enough p99.

    Every failed criterion is named (a slow green often has few *finished*
    requests too: "p99 0.5 s" is the reason people need, not only "too few").
    """
    if window is None:
        return Verdict(False, "no data: green's /metrics could not be read", 0, None, None)
    if window.reset:
        return Verdict(False, "no data: green restarted during the step", 0, None, None)
    ratio, p99 = window.error_ratio(), window.quantile(0.99)
    if window.requests == 0:
        return Verdict(False, "no traffic: green answered no /ping", 0, None, None)
    reasons = []
    if ratio is not None and ratio > limits.max_error_ratio:
        reasons.append(f"error ratio {fmt_ratio(ratio)} > {limits.max_error_ratio}")
    if p99 is not None and p99 > limits.max_p99:
        reasons.append(f"p99 {fmt_seconds(p99)} > {limits.max_p99}s")
    if window.requests < limits.min_requests:
        reasons.append(f"too little traffic: {window.requests} requests < {limits.min_requests}")
    return Verdict(not reasons, "; ".join(reasons) or "ok", window.requests, ratio, p99)


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def fmt_seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}s"
