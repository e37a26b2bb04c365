"""Prometheus metrics. Names and labels are a contract with deploy/monitoring/.

Labels never carry client data (addresses, API keys): only routes, methods,
status codes, policy names and storage names, so cardinality stays fixed.
With ``--workers N`` the server sets PROMETHEUS_MULTIPROC_DIR before any worker
imports this module, and prometheus_client aggregates the workers' files.
"""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)

disable_created_metrics()  # type: ignore[no-untyped-call] # *_created series double the exposition for no use here

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

http_requests = Counter(
    "pingpong_http_requests", "HTTP requests answered.", ["method", "route", "status"]
)
http_duration = Histogram(
    "pingpong_http_request_duration_seconds",
    "Time to answer an HTTP request (the latency SLO threshold is 0.1 s).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
http_in_flight = Gauge(
    "pingpong_http_requests_in_flight",
    "HTTP requests being answered.",
    multiprocess_mode="livesum",
)
ratelimit_decisions = Counter(
    "pingpong_ratelimit_decisions",
    "Rate-limit decisions per policy (allowed, limited, shadow_limited).",
    ["policy", "decision"],
)
storage_duration = Histogram(
    "pingpong_storage_request_duration_seconds",
    "Round trip of one storage decision.",
    ["storage"],
    buckets=LATENCY_BUCKETS,
)
storage_errors = Counter(
    "pingpong_storage_errors", "Storage decisions that failed.", ["storage", "error"]
)
storage_fallbacks = Counter(
    "pingpong_storage_fallbacks",
    "Decisions made by the on-storage-error mode instead of the storage.",
    ["mode"],
)
storage_circuit_open = Gauge(
    "pingpong_storage_circuit_open",
    "1 while the storage circuit breaker is open.",
    ["storage"],
    multiprocess_mode="max",
)
build_info = Gauge(
    "pingpong_build_info",
    "Always 1; labels say what is running.",
    ["version", "commit", "slot"],
    multiprocess_mode="max",
)


def registry() -> CollectorRegistry:
    """What /metrics exposes: this process, or all workers in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)  # type: ignore[no-untyped-call]
    return aggregated
