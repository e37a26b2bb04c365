"""The metric table: every metric is created, serialised, merged across
prefork workers and exported from its one declaration."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pingpong.http.prometheus import registry_for
from pingpong.service.counters import METRICS, Counters, Gauge, Histograms, Info, Metric, Total


def sample(metric: Metric[Any], counters: Counters) -> None:
    """One observation of ``metric``, whatever its kind."""
    labels = tuple(f"v{i}" for i in range(len(metric.labels)))
    key = labels if len(labels) > 1 else labels[0] if labels else None
    value = getattr(counters, metric.attr)
    if isinstance(metric, Histograms):  # keyed by the label tuple, () with no labels
        value[labels[0] if len(labels) == 1 else labels].observe(0.003)
    elif isinstance(metric, Total):
        setattr(counters, metric.attr, value + 2)
    elif isinstance(metric, Info):
        setattr(counters, metric.attr, key)
    else:
        value[key] = value.get(key, 0) + 1


def exported(counters: Counters) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry_for(lambda: counters)).decode()
    return {
        sample.name: [(s.labels, s.value) for s in family.samples if s.name == sample.name]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_metric_is_exported_under_its_declared_name_and_labels() -> None:
    counters = Counters()
    for metric in METRICS:
        sample(metric, counters)
    names = exported(counters)
    for metric in METRICS:
        series = metric.name + ("_total" if metric.kind == "counter" else "")
        series += "_count" if metric.kind == "histogram" else ""
        assert series in names, series
        labels = {name for labels, _ in names[series] for name in labels}
        assert labels == set(metric.labels), metric.name


def test_workers_merge_by_kind_counts_add_gauges_only_from_live_workers() -> None:
    one = Counters()
    for metric in METRICS:
        sample(metric, one)
    total = Counters()
    data = json.loads(json.dumps(one.to_json()))  # as the workers exchange it
    total.add(data, alive=True)
    total.add(data, alive=False)  # a dead worker: its counts stay, its gauges go
    for metric in METRICS:
        got, single = getattr(total, metric.attr), getattr(one, metric.attr)
        if isinstance(metric, Info | Gauge):
            assert got == single
        elif isinstance(metric, Total):
            assert got == 2 * single
        elif isinstance(metric, Histograms):
            [(key, h)] = got.items()
            assert sum(h.counts) == 2 * sum(single[key].counts)
        elif metric.live:
            assert got == single  # a flag: the live worker's
        else:
            assert got == {k: 2 * v for k, v in single.items()}, metric.name
    assert Counters().reloads == {"ok": 0, "error": 0}  # exported before the first reload


def test_each_metric_is_one_declaration() -> None:
    """METRICS is read off the class: nothing else lists the metrics."""
    declared = [v for v in vars(Counters).values() if isinstance(v, Metric)]
    assert list(METRICS) == declared
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert set(Counters().to_json()) == {m.attr for m in METRICS}
