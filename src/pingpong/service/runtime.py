"""The running service's state, assembled from Settings and swapped on reload."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from pingpong import __version__
from pingpong.config import RESTART_ONLY, Build, ConfigError, Settings
from pingpong.core.clientip import ClientResolver
from pingpong.core.limiter import Limiter, Rules
from pingpong.core.storage.base import Resilience, Storage, StorageOptions
from pingpong.core.storage.registry import open_storage
from pingpong.logs import configure as configure_logging
from pingpong.service.control import ControlPlane
from pingpong.service.counters import Counters

log = logging.getLogger("pingpong")


class Service:
    """Everything a request needs. ``reload`` swaps the limiter's rules and the
    resolver in one assignment each, so a request sees either the old or the
    new config, and applies the storage's failure settings in place."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[], Settings] | None = None,
        counters: Counters | None = None,
        build: Build | None = None,
    ) -> None:
        self.settings = settings
        self._loader = loader
        self.counters = counters or Counters()
        opened = open_storage(
            settings.storage, _options(settings), _resilience(settings), self.counters
        )
        self.storage: Storage = opened.storage
        self.limiter = Limiter(_rules(settings), self.storage, stats=self.counters)
        self.resolver = _resolver(settings)
        self.control = ControlPlane(
            self.limiter, self.storage, opened.admin_store, lambda: self.resolver
        )
        self.draining = False
        self.fault_injection = _fault_injection(settings)
        self.version = __version__
        self.commit, self.slot = build or Build()
        self.counters.build = (self.version, self.commit, self.slot)
        self.counters.config_hash = config_hash(settings)

    def reload(self) -> bool:
        """Re-read the config; keep serving the old one if the new one is bad."""
        if self._loader is None:
            log.warning("reload requested but the service was not started from a config loader")
            return False
        try:
            new = self._loader()
        except ConfigError as exc:
            self.counters.reloads["error"] += 1
            log.error("config reload refused, keeping the running config:\n%s", exc)
            return False
        self.apply(new)
        self.counters.reloads["ok"] += 1
        return True

    def apply(self, new: Settings) -> None:
        """Take over ``new``: everything but what only a restart can change."""
        old = self.settings
        ignored = [name for name in RESTART_ONLY if getattr(new, name) != getattr(old, name)]
        if ignored:
            log.warning("reload cannot change %s: restart to apply", ", ".join(ignored))
        self.storage.configure(_resilience(new), _options(new))
        if new.log_format != self.settings.log_format:
            configure_logging(new.log_format)
        self.limiter.swap(_rules(new))
        self.resolver = _resolver(new)
        self.fault_injection = _fault_injection(new)
        self.settings = new
        self.counters.config_hash = config_hash(new)
        log.info(
            "config applied: %d policies, hash %s",
            len(self.limiter.rules.policies), self.counters.config_hash,
        )  # fmt: skip


def config_hash(settings: Settings) -> str:
    """Equal on every replica running the same effective config."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:12]


def _options(settings: Settings) -> StorageOptions:
    return StorageOptions(
        settings.storage_timeout, settings.memory_max_keys, settings.storage_connections
    )


def _resilience(settings: Settings) -> Resilience:
    return Resilience(
        settings.on_storage_error,
        settings.circuit_failures,
        settings.circuit_reset,
        settings.fleet_min_replicas,
    )


def _rules(settings: Settings) -> Rules:
    return Rules(settings.effective_policies(), settings.tiers(), settings.api_keys.header)


def _resolver(settings: Settings) -> ClientResolver:
    return ClientResolver(settings.trusted_proxies, settings.forwarded_header, settings.ipv6_prefix)


def _fault_injection(settings: Settings) -> bool:
    if settings.fault_error_rate or settings.fault_delay:
        log.warning(
            "FAULT INJECTION ON: error rate %s, delay %s s (drills only)",
            settings.fault_error_rate, settings.fault_delay,
        )  # fmt: skip
        return True
    return False
