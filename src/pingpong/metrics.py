"""Prometheus metrics, counted as plain integers on the hot path.

prometheus_client takes a lock on every ``inc``/``observe``; at tens of thousands
of requests a second per core that was a fifth of the service's own time
(docs/performance.md). So each process counts in dicts of ints, and a collector
turns them into metric families at scrape time. With ``--workers N`` every worker
also writes its counts to a file once a second and at exit, and /metrics adds
up all workers.

Names and labels are a contract with deploy/monitoring/. Labels never carry
client data (addresses, API keys): only methods, routes, status codes, policy
and storage names, so cardinality stays fixed.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WORKERS_DIR_ENV = "PINGPONG_METRICS_DIR"


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Stats:
    """One process's counts. Every field is a plain container of numbers."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.durations: defaultdict[tuple[str, str], Histogram] = defaultdict(Histogram)
        self.in_flight = 0
        self.decisions: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.storage_durations: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.storage_errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.fallbacks: defaultdict[str, int] = defaultdict(int)
        self.circuit_open: dict[str, int] = {}
        self.build: tuple[str, str, str] = ("", "", "")

    def to_json(self) -> dict[str, Any]:
        def hist(h: Histogram) -> list[Any]:
            return [list(h.counts), h.total]

        return {
            "requests": [[*k, v] for k, v in list(self.requests.items())],
            "durations": [[*k, hist(h)] for k, h in list(self.durations.items())],
            "in_flight": self.in_flight,
            "decisions": [[*k, v] for k, v in list(self.decisions.items())],
            "storage_durations": [[k, hist(h)] for k, h in list(self.storage_durations.items())],
            "storage_errors": [[*k, v] for k, v in list(self.storage_errors.items())],
            "fallbacks": list(self.fallbacks.items()),
            "circuit_open": list(self.circuit_open.items()),
            "build": list(self.build),
        }

    def add(self, data: dict[str, Any], gauges: bool) -> None:
        """Add another worker's counts (its gauges only if it is alive)."""
        for method, route, status, count in data["requests"]:
            self.requests[(method, route, status)] += count
        for method, route, (counts, total) in data["durations"]:
            _merge(self.durations[(method, route)], counts, total)
        for policy, decision, count in data["decisions"]:
            self.decisions[(policy, decision)] += count
        for storage, (counts, total) in data["storage_durations"]:
            _merge(self.storage_durations[storage], counts, total)
        for storage, error, count in data["storage_errors"]:
            self.storage_errors[(storage, error)] += count
        for mode, count in data["fallbacks"]:
            self.fallbacks[mode] += count
        if gauges:
            self.in_flight += data["in_flight"]
            for storage, is_open in data["circuit_open"]:
                self.circuit_open[storage] = max(self.circuit_open.get(storage, 0), is_open)
        if not any(self.build):
            self.build = tuple(data["build"])


def _merge(into: Histogram, counts: list[int], total: float) -> None:
    into.counts = [a + b for a, b in zip(into.counts, counts, strict=True)]
    into.total += total


STATS = Stats()


def write_worker_file() -> None:
    """Publish this worker's counts for its siblings' /metrics."""
    directory = os.environ.get(WORKERS_DIR_ENV)
    if directory:
        path = Path(directory) / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(STATS.to_json()))
        tmp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _all_workers() -> Stats:
    directory = os.environ.get(WORKERS_DIR_ENV)
    if not directory:
        return STATS
    total = Stats()
    total.add(STATS.to_json(), gauges=True)
    for path in Path(directory).glob("*.json"):
        pid = int(path.stem)
        if pid != os.getpid():
            try:
                total.add(json.loads(path.read_text()), gauges=_alive(pid))
            except (OSError, ValueError):  # a worker replacing its file right now
                continue
    return total


def _labels(key: object) -> list[str]:
    return [str(part) for part in key] if isinstance(key, tuple) else [str(key)]


def _counter(name: str, doc: str, labels: list[str], counts: dict[Any, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, count in sorted(counts.items()):
        family.add_metric(_labels(key), count)
    return family


def _histogram(name: str, doc: str, labels: list[str], histograms: dict[Any, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, h in sorted(histograms.items()):
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), h.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric(_labels(key), buckets, h.total)
    return family


class StatsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        stats = _all_workers()
        yield _counter(
            "pingpong_http_requests", "HTTP requests answered.",
            ["method", "route", "status"], stats.requests,
        )  # fmt: skip
        yield _histogram(
            "pingpong_http_request_duration_seconds",
            "Time to answer an HTTP request (the latency SLO threshold is 0.1 s).",
            ["method", "route"], stats.durations,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "pingpong_http_requests_in_flight", "HTTP requests being answered.", stats.in_flight
        )
        yield _counter(
            "pingpong_ratelimit_decisions",
            "Rate-limit decisions per policy (allowed, limited, shadow_limited).",
            ["policy", "decision"], stats.decisions,
        )  # fmt: skip
        yield _histogram(
            "pingpong_storage_request_duration_seconds", "Round trip of one storage decision.",
            ["storage"], stats.storage_durations,
        )  # fmt: skip
        yield _counter(
            "pingpong_storage_errors", "Storage decisions that failed.",
            ["storage", "error"], stats.storage_errors,
        )  # fmt: skip
        yield _counter(
            "pingpong_storage_fallbacks",
            "Decisions made by the on-storage-error mode instead of the storage.",
            ["mode"], stats.fallbacks,
        )  # fmt: skip
        circuit = GaugeMetricFamily(
            "pingpong_storage_circuit_open", "1 while the storage circuit breaker is open.",
            labels=["storage"],
        )  # fmt: skip
        for name, is_open in sorted(stats.circuit_open.items()):
            circuit.add_metric([name], is_open)
        yield circuit
        build = GaugeMetricFamily(
            "pingpong_build_info", "Always 1; labels say what is running.",
            labels=["version", "commit", "slot"],
        )  # fmt: skip
        build.add_metric(list(stats.build), 1)
        yield build


REGISTRY.register(StatsCollector())
