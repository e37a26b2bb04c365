"""Config that follows its file: the --config file is polled by content hash
and reloaded on change exactly as SIGHUP does (an invalid file is refused and
the old config keeps serving). Reading by path follows symlinks, so a
Kubernetes ConfigMap volume's atomic ``..data`` swap is seen like an edit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pingpong.service.runtime import Service

log = logging.getLogger("pingpong")
WATCH_SECONDS = 2.0


def file_digest(path: Path) -> str | None:
    """The content's hash; None while the file cannot be read (mid-swap)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigWatch:
    """Polls ``path`` and reloads on change. SIGHUP goes through ``reload``
    too, so that a signal after an edit does not reload the same file twice."""

    def __init__(self, service: Service, path: Path, interval: float = WATCH_SECONDS) -> None:
        self._service = service
        self._path = path
        self._interval = interval
        self._seen = file_digest(path)

    def reload(self) -> None:
        self._seen = file_digest(self._path) or self._seen
        self._service.reload()

    async def run(self) -> None:
        """Until cancelled. ``watch_config: false`` pauses it (a reload may turn
        it on or off); a change seen while paused is applied when it resumes."""
        while True:
            await asyncio.sleep(self._interval)
            if not self._service.settings.watch_config:
                continue
            current = file_digest(self._path)
            if current is None or current == self._seen:
                continue
            log.info("config file %s changed: reloading", self._path)
            self.reload()
