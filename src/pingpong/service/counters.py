"""One process's counts, as plain ints: the sink the core reports into.

prometheus_client takes a lock on every ``inc``/``observe``; at tens of
thousands of requests a second per core that was a fifth of the service's own
time (docs/performance.md). So the process counts in dicts of ints and the
HTTP layer turns them into metric families at scrape time
(``pingpong.http.prometheus``).

Labels never carry client data (addresses, API keys): only methods, routes,
status codes, policy and storage names, so cardinality stays fixed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import Any

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def merge(self, counts: list[int], total: float) -> None:
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total


class Counters:
    """Every field is a plain container of numbers (or label strings)."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.durations: defaultdict[tuple[str, str], Histogram] = defaultdict(Histogram)
        self.in_flight = 0
        self.shed = 0  # /ping requests refused by the in-flight bound
        self.decisions: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.storage_durations: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.storage_errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.fallbacks: defaultdict[str, int] = defaultdict(int)
        self.circuit_open: dict[str, int] = {}
        self.fleet_replicas = 0
        self.loop_lag = Histogram()  # every tick of the event-loop lag monitor
        self.reloads: defaultdict[str, int] = defaultdict(int)
        self.admin_operations: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.control_entries_invalid = 0
        self.config_hash = ""
        self.build: tuple[str, str, str] = ("", "", "")

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

    def fleet_seen(self, replicas: int) -> None:
        self.fleet_replicas = replicas

    def control_entry_invalid(self) -> None:
        self.control_entries_invalid += 1

    def to_json(self) -> dict[str, Any]:
        def hist(h: Histogram) -> list[Any]:
            return [list(h.counts), h.total]

        return {
            "requests": [[*k, v] for k, v in list(self.requests.items())],
            "durations": [[*k, hist(h)] for k, h in list(self.durations.items())],
            "in_flight": self.in_flight,
            "shed": self.shed,
            "decisions": [[*k, v] for k, v in list(self.decisions.items())],
            "storage_durations": [[k, hist(h)] for k, h in list(self.storage_durations.items())],
            "storage_errors": [[*k, v] for k, v in list(self.storage_errors.items())],
            "fallbacks": list(self.fallbacks.items()),
            "circuit_open": list(self.circuit_open.items()),
            "fleet_replicas": self.fleet_replicas,
            "loop_lag": hist(self.loop_lag),
            "reloads": list(self.reloads.items()),
            "admin_operations": [[*k, v] for k, v in list(self.admin_operations.items())],
            "control_entries_invalid": self.control_entries_invalid,
            "config_hash": self.config_hash,
            "build": list(self.build),
        }

    def add(self, data: dict[str, Any], alive: bool) -> None:
        """Add another worker's counts (its gauges only if it is alive)."""
        for method, route, status, count in data["requests"]:
            self.requests[(method, route, status)] += count
        for method, route, (counts, total) in data["durations"]:
            self.durations[(method, route)].merge(counts, total)
        for policy, decision, count in data["decisions"]:
            self.decisions[(policy, decision)] += count
        for storage, (counts, total) in data["storage_durations"]:
            self.storage_durations[storage].merge(counts, total)
        for storage, error, count in data["storage_errors"]:
            self.storage_errors[(storage, error)] += count
        self.shed += data.get("shed", 0)
        for mode, count in data["fallbacks"]:
            self.fallbacks[mode] += count
        self.loop_lag.merge(*data.get("loop_lag", ([0] * (len(BUCKETS) + 1), 0.0)))
        for result, count in data["reloads"]:
            self.reloads[result] += count
        for operation, result, count in data.get("admin_operations", ()):
            self.admin_operations[(operation, result)] += count
        self.control_entries_invalid += data.get("control_entries_invalid", 0)
        if alive:
            self.in_flight += data["in_flight"]
            for storage, is_open in data["circuit_open"]:
                self.circuit_open[storage] = max(self.circuit_open.get(storage, 0), is_open)
            self.fleet_replicas = max(self.fleet_replicas, data.get("fleet_replicas", 0))
        self.config_hash = self.config_hash or data["config_hash"]
        if not any(self.build):
            self.build = tuple(data["build"])
