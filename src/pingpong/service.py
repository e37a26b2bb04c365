"""The running service's state, assembled from Settings and swapped on reload."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from pingpong import __version__, metrics
from pingpong.config import ConfigError, Settings
from pingpong.core.clientip import ClientResolver
from pingpong.core.limiter import Limiter
from pingpong.core.storage import Storage, open_storage

log = logging.getLogger("pingpong")


class Service:
    """Everything a request needs. ``reload`` swaps the limiter and resolver in
    one assignment each, so a request sees either the old or the new config."""

    def __init__(self, settings: Settings, loader: Callable[[], Settings] | None = None) -> None:
        self.settings = settings
        self._loader = loader
        self.storage: Storage = open_storage(
            settings.storage,
            timeout=settings.storage_timeout,
            mode=settings.on_storage_error,
            memory_max_keys=settings.memory_max_keys,
        )
        self.limiter = self._limiter(settings)
        self.resolver = self._resolver(settings)
        self.draining = False
        self.faulty = self._faulty(settings)
        self.version = __version__
        self.commit = os.environ.get("PINGPONG_COMMIT", "unknown")
        self.slot = os.environ.get("PINGPONG_SLOT", "")
        metrics.STATS.build = (self.version, self.commit, self.slot)

    def _limiter(self, settings: Settings) -> Limiter:
        return Limiter(
            settings.effective_policies(),
            self.storage,
            tiers=settings.tiers(),
            api_key_header=settings.api_keys.header,
        )

    @staticmethod
    def _faulty(settings: Settings) -> bool:
        if settings.fault_error_rate or settings.fault_delay:
            log.warning(
                "FAULT INJECTION ON: error rate %s, delay %s s (drills only)",
                settings.fault_error_rate, settings.fault_delay,
            )  # fmt: skip
            return True
        return False

    @staticmethod
    def _resolver(settings: Settings) -> ClientResolver:
        return ClientResolver(
            settings.trusted_proxies, settings.forwarded_header, settings.ipv6_prefix
        )

    def reload(self) -> bool:
        """Re-read the config; keep serving the old one if the new one is bad."""
        if self._loader is None:
            log.warning("reload requested but the service was not started from a config loader")
            return False
        try:
            new = self._loader()
        except ConfigError as exc:
            log.error("config reload refused, keeping the running config:\n%s", exc)
            return False
        unchanged = ("storage", "host", "port", "workers", "metrics_port")
        changed = [name for name in unchanged if getattr(new, name) != getattr(self.settings, name)]
        if changed:
            log.warning("reload ignores %s: restart to change them", ", ".join(changed))
        self.limiter = self._limiter(new)
        self.resolver = self._resolver(new)
        self.settings = new
        self.faulty = self._faulty(new)
        log.info("config reloaded: %d policies", len(self.limiter.policies))
        return True
