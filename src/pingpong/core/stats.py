"""The counters the core reports, as a protocol: the service passes a sink in.

The core stays free of any metrics library (as envoy's ratelimit passes its
stats scope down); the service's sink counts plain ints and the HTTP layer
exports them to Prometheus.
"""

from __future__ import annotations

from typing import Protocol


class Stats(Protocol):
    def decided(self, policy: str, verdict: str) -> None:
        """``verdict``: allowed | limited | shadow_limited."""

    def storage_answered(self, storage: str, seconds: float) -> None: ...

    def storage_failed(self, storage: str, kind: str) -> None: ...

    def fell_back(self, mode: str) -> None: ...

    def circuit_changed(self, storage: str, is_open: bool) -> None: ...

    def fleet_seen(self, replicas: int) -> None:
        """The replicas sharing the storage, as this one last saw them."""

    def control_entry_invalid(self) -> None:
        """An entry read back from the storage failed validation (skipped)."""


class NoStats:
    """Counts nothing: for tools and tests that do not look at counters."""

    def decided(self, policy: str, verdict: str) -> None:
        pass

    def storage_answered(self, storage: str, seconds: float) -> None:
        pass

    def storage_failed(self, storage: str, kind: str) -> None:
        pass

    def fell_back(self, mode: str) -> None:
        pass

    def circuit_changed(self, storage: str, is_open: bool) -> None:
        pass

    def fleet_seen(self, replicas: int) -> None:
        pass

    def control_entry_invalid(self) -> None:
        pass
