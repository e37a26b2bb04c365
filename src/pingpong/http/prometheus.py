"""Prometheus export of the service's counters, built at scrape time.

Names and labels are a contract with deploy/monitoring/. Nothing registers at
import: each App (and the --metrics-port server) builds its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pingpong.service.counters import BUCKETS, Counters, Histogram


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


def _gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(_labels(key), value)
    return family


class CountersCollector(Collector):
    """``source`` gives the counts to export (with --workers, all workers')."""

    def __init__(self, source: Callable[[], Counters]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        c = self._source()
        yield _counter(
            "pingpong_http_requests", "HTTP requests answered.",
            ["method", "route", "status"], c.requests,
        )  # fmt: skip
        yield _histogram(
            "pingpong_http_request_duration_seconds",
            "Time to answer an HTTP request, the event loop's lag when it began included "
            "(the latency SLO threshold is 0.1 s).",
            ["method", "route"], c.durations,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "pingpong_http_requests_in_flight", "HTTP requests being answered.", c.in_flight
        )
        yield CounterMetricFamily(
            "pingpong_http_requests_shed",
            "/ping requests refused (503, Retry-After) by the in-flight bound max_in_flight; "
            "also counted in pingpong_http_requests_total.",
            c.shed,
        )
        yield _counter(
            "pingpong_ratelimit_decisions",
            "Rate-limit decisions per policy (allowed, limited, shadow_limited).",
            ["policy", "decision"], c.decisions,
        )  # fmt: skip
        yield _histogram(
            "pingpong_storage_request_duration_seconds", "Round trip of one storage decision.",
            ["storage"], c.storage_durations,
        )  # fmt: skip
        yield _counter(
            "pingpong_storage_errors", "Storage decisions that failed.",
            ["storage", "error"], c.storage_errors,
        )  # fmt: skip
        yield _counter(
            "pingpong_storage_fallbacks",
            "Decisions made by the on-storage-error mode instead of the storage.",
            ["mode"], c.fallbacks,
        )  # fmt: skip
        yield _gauge(
            "pingpong_storage_circuit_open", "1 while the storage circuit breaker is open.",
            ["storage"], c.circuit_open,
        )  # fmt: skip
        yield _histogram(
            "pingpong_event_loop_lag_seconds",
            "How late the event loop ran a timer due every 10 ms: the queueing a request "
            "meets in this process before the app runs it.",
            [], {(): c.loop_lag},
        )  # fmt: skip
        yield GaugeMetricFamily(
            "pingpong_fleet_replicas",
            "Replicas sharing the storage as this one last saw them (0: not shared); "
            "during an outage each enforces 1/n of every limit in local mode.",
            c.fleet_replicas,
        )
        yield _counter(
            "pingpong_config_reloads", "Config reloads (SIGHUP or file change) by result.",
            ["result"], {result: c.reloads.get(result, 0) for result in ("ok", "error")},
        )  # fmt: skip
        yield _counter(
            "pingpong_admin_operations", "Admin API operations by operation and result.",
            ["operation", "result"], c.admin_operations,
        )  # fmt: skip
        yield CounterMetricFamily(
            "pingpong_control_entries_invalid",
            "Entries read back from the storage (change log, overrides) that failed validation.",
            value=c.control_entries_invalid,
        )
        yield _gauge(
            "pingpong_config_info", "Always 1; the hash of the running effective config.",
            ["hash"], {c.config_hash: 1},
        )  # fmt: skip
        yield _gauge(
            "pingpong_build_info", "Always 1; labels say what is running.",
            ["version", "commit", "slot"], {c.build: 1},
        )  # fmt: skip


def registry_for(source: Callable[[], Counters]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CountersCollector(source))
    return registry
