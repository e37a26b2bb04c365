"""One process's counts, as plain ints: the sink the core reports into.

prometheus_client takes a lock on every ``inc``/``observe``; at tens of
thousands of requests a second per core that was a fifth of the service's own
time (docs/performance.md). So the process counts in dicts of ints and the
HTTP layer turns them into metric families at scrape time
(``pingpong.http.prometheus``).

Each metric is declared once, as a class attribute of ``Counters`` (its
exported name, help, labels and kind): creating, serialising, merging (the
prefork workers' exchange) and exporting iterate ``METRICS``, so adding a
metric is one line. A one-label metric is keyed by the label's value, a
metric of several labels by their tuple.

Labels never carry client data (addresses, API keys): only methods, routes,
status codes, policy and storage names, so cardinality stays fixed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

from pingpong.service.histogram import Histogram

V = TypeVar("V")
K = TypeVar("K")


def label_values(key: Any) -> tuple[Any, ...]:
    """The label values of a key (or of an Info's value, a list once serialised)."""
    return tuple(key) if isinstance(key, tuple | list) else (key,)


class Metric(Generic[V]):
    """A metric's declaration; on an instance of Counters the attribute is its
    value (set by ``Counters.__init__``, so reading it costs a plain lookup)."""

    kind = ""
    live = False  # a value of the moment: merged only from live workers

    def __init__(self, name: str, doc: str, labels: Iterable[str], make: Callable[[], V]) -> None:
        self.name, self.doc, self.labels, self.make = name, doc, tuple(labels), make
        self.attr = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type) -> Metric[V]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> V: ...
    def __get__(self, obj: object, owner: type) -> Metric[V] | V:
        if obj is None:
            return self
        raise AttributeError(self.attr)  # Counters.__init__ sets every one

    def key(self, values: list[Any]) -> Any:
        return tuple(values) if len(self.labels) != 1 else values[0]

    def to_json(self, value: V) -> Any:
        return [[*label_values(k), v] for k, v in list(value.items())]  # type: ignore[attr-defined]

    def merge(self, into: V, data: Any) -> V:
        """``into`` with another worker's serialised value added (counts add up)."""
        for *values, count in data:
            into[self.key(values)] += count  # type: ignore[index]
        return into


class Counter(Metric["defaultdict[K, int]"]):
    kind = "counter"

    def __init__(self, name: str, doc: str, *labels: str, always: Iterable[K] = ()) -> None:
        keys = tuple(always)  # exported even at 0
        super().__init__(name, doc, labels, lambda: defaultdict(int, dict.fromkeys(keys, 0)))


class Histograms(Metric["defaultdict[K, Histogram]"]):
    kind = "histogram"

    def __init__(self, name: str, doc: str, *labels: str) -> None:
        super().__init__(name, doc, labels, lambda: defaultdict(Histogram))

    def to_json(self, value: defaultdict[K, Histogram]) -> Any:
        return [[*label_values(k), [h.counts, h.total]] for k, h in list(value.items())]

    def merge(self, into: defaultdict[K, Histogram], data: Any) -> defaultdict[K, Histogram]:
        for *values, (counts, total) in data:
            into[self.key(values)].merge(counts, total)
        return into


class Total(Metric[int]):
    """A count without labels: every worker's add up."""

    kind = "counter"

    def __init__(self, name: str, doc: str) -> None:
        super().__init__(name, doc, (), int)

    def to_json(self, value: int) -> Any:
        return value

    def merge(self, into: int, data: Any) -> int:
        return into + int(data)


class Gauge(Total):
    """A count of the moment (no labels): the live workers' add up."""

    kind = "gauge"
    live = True


class Largest(Gauge):
    """A level of the moment (no labels): the largest a live worker reports."""

    def merge(self, into: int, data: Any) -> int:
        return max(into, int(data))


class Flags(Metric["dict[K, int]"]):
    """A 0/1 state per label: 1 if any live worker says 1."""

    kind = "gauge"
    live = True

    def __init__(self, name: str, doc: str, *labels: str) -> None:
        super().__init__(name, doc, labels, dict)

    def merge(self, into: dict[K, int], data: Any) -> dict[K, int]:
        for *values, flag in data:
            key = self.key(values)
            into[key] = max(into.get(key, 0), flag)
        return into


class Info(Metric[V]):
    """Always 1, its labels say what runs: the first worker's that is set."""

    kind = "info"

    def __init__(self, name: str, doc: str, *labels: str) -> None:
        make: Callable[[], Any] = (
            (lambda: "") if len(labels) == 1 else (lambda: ("",) * len(labels))
        )
        super().__init__(name, doc, labels, make)

    def to_json(self, value: V) -> Any:
        return value

    def merge(self, into: V, data: Any) -> V:
        if any(label_values(into)) or not data:
            return into
        return self.key(list(label_values(data)))  # type: ignore[no-any-return]


class Counters:
    """The service's metrics; ``Stats`` methods are what the core reports."""

    requests: Counter[tuple[str, str, int]] = Counter(
        "pingpong_http_requests", "HTTP requests answered.", "method", "route", "status"
    )
    durations: Histograms[tuple[str, str]] = Histograms(
        "pingpong_http_request_duration_seconds",
        "Time to answer an HTTP request, the event loop's lag when it began included "
        "(the latency SLO threshold is 0.1 s).",
        "method", "route",
    )  # fmt: skip
    in_flight = Gauge("pingpong_http_requests_in_flight", "HTTP requests being answered.")
    shed = Total(
        "pingpong_http_requests_shed",
        "/ping requests refused (503, Retry-After) by the load shedder "
        "(max_in_flight, max_loop_lag); "
        "also counted in pingpong_http_requests_total.",
    )
    loop_lag: Histograms[tuple[()]] = Histograms(
        "pingpong_event_loop_lag_seconds",
        "How late the event loop ran a timer due every 10 ms: the queueing a request "
        "meets in this process before the app runs it.",
    )
    decisions: Counter[tuple[str, str]] = Counter(
        "pingpong_ratelimit_decisions",
        "Rate-limit decisions per policy (allowed, limited, shadow_limited).",
        "policy", "decision",
    )  # fmt: skip
    storage_durations: Histograms[str] = Histograms(
        "pingpong_storage_request_duration_seconds", "Round trip of one storage decision.",
        "storage",
    )  # fmt: skip
    storage_errors: Counter[tuple[str, str]] = Counter(
        "pingpong_storage_errors", "Storage decisions that failed.", "storage", "error"
    )
    fallbacks: Counter[str] = Counter(
        "pingpong_storage_fallbacks",
        "Decisions made by the on-storage-error mode instead of the storage.", "mode",
    )  # fmt: skip
    circuit_open: Flags[str] = Flags(
        "pingpong_storage_circuit_open", "1 while the storage circuit breaker is open.", "storage"
    )
    reloads: Counter[str] = Counter(
        "pingpong_config_reloads", "Config reloads (SIGHUP or file change) by result.",
        "result", always=("ok", "error"),
    )  # fmt: skip
    admin_operations: Counter[tuple[str, str]] = Counter(
        "pingpong_admin_operations", "Admin API operations by operation and result.",
        "operation", "result",
    )  # fmt: skip
    fleet_replicas = Largest(
        "pingpong_fleet_replicas",
        "Replicas sharing the storage as this one last saw them (0: not shared); "
        "during an outage each enforces 1/n of every limit in local mode.",
    )
    control_entries_invalid = Total(
        "pingpong_control_entries_invalid",
        "Entries read back from the storage (change log, overrides) that failed validation.",
    )
    config_hash: Info[str] = Info(
        "pingpong_config_info", "Always 1; the hash of the running effective config.", "hash"
    )
    build: Info[tuple[str, str, str]] = Info(
        "pingpong_build_info", "Always 1; labels say what is running.",
        "version", "commit", "slot",
    )  # fmt: skip

    def __init__(self) -> None:
        for metric in METRICS:
            setattr(self, metric.attr, metric.make())

    # The core's Stats sink (pingpong.core.stats.Stats).
    def decided(self, policy: str, verdict: str) -> None:
        self.decisions[(policy, verdict)] += 1

    def storage_answered(self, storage: str, seconds: float) -> None:
        self.storage_durations[storage].observe(seconds)

    def storage_failed(self, storage: str, kind: str) -> None:
        self.storage_errors[(storage, kind)] += 1

    def fell_back(self, mode: str) -> None:
        self.fallbacks[mode] += 1

    def circuit_changed(self, storage: str, is_open: bool) -> None:
        self.circuit_open[storage] = int(is_open)

    def control_entry_invalid(self) -> None:
        self.control_entries_invalid += 1

    def fleet_seen(self, replicas: int) -> None:
        self.fleet_replicas = replicas

    def loop_lagged(self, seconds: float) -> None:
        """One tick of the event-loop lag monitor (pingpong.core.looplag)."""
        self.loop_lag[()].observe(seconds)

    def to_json(self) -> dict[str, Any]:
        return {m.attr: m.to_json(getattr(self, m.attr)) for m in METRICS}

    def add(self, data: dict[str, Any], alive: bool) -> None:
        """Add another worker's counts (its gauges only if it is alive)."""
        for metric in METRICS:
            given = data.get(metric.attr)
            if given is not None and (alive or not metric.live):
                setattr(self, metric.attr, metric.merge(getattr(self, metric.attr), given))


METRICS: tuple[Metric[Any], ...] = tuple(
    value for value in vars(Counters).values() if isinstance(value, Metric)
)
