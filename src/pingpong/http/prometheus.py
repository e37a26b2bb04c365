"""Prometheus export of the service's counters, built at scrape time.

Names and labels are a contract with deploy/monitoring/. Nothing registers at
import: each App (and the --metrics-port server) builds its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pingpong.service.counters import METRICS, Counters, label_values
from pingpong.service.counters import Metric as Spec
from pingpong.service.histogram import BUCKETS, Histogram


def _labels(key: object) -> list[str]:
    return [str(part) for part in label_values(key)]


def _histogram(spec: Spec[Any], histograms: dict[Any, Histogram]) -> Metric:
    family = HistogramMetricFamily(spec.name, spec.doc, labels=spec.labels)
    for key, h in sorted(histograms.items()):
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), h.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric(_labels(key), buckets, h.total)
    return family


def family(spec: Spec[Any], value: Any) -> Metric:
    """The metric family of ``spec`` (a Counters attribute) holding ``value``."""
    if spec.kind == "histogram":
        return _histogram(spec, value)
    if spec.kind == "info":
        value = {value: 1}
    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    if not spec.labels and spec.kind != "info":
        return kind(spec.name, spec.doc, value=value)
    metric = kind(spec.name, spec.doc, labels=spec.labels)
    for key, number in sorted(value.items()):
        metric.add_metric(_labels(key), number)
    return metric


class CountersCollector(Collector):
    """``source`` gives the counts to export (with --workers, all workers')."""

    def __init__(self, source: Callable[[], Counters]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        counters = self._source()
        for spec in METRICS:
            yield family(spec, getattr(counters, spec.attr))


def registry_for(source: Callable[[], Counters]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CountersCollector(source))
    return registry
