"""Prefork workers (--workers N) share their counts through files.

Each worker writes its counts to ``<dir>/<pid>.json`` once a second and at
exit; any worker's /metrics adds up all of them, so a scrape that lands on
one worker still sees the whole process group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pingpong.service.counters import Counters


def publish(counters: Counters, directory: Path) -> None:
    path = directory / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(counters.to_json()))
    tmp.replace(path)


def all_workers(counters: Counters, directory: Path | None) -> Counters:
    """This worker's counts plus its siblings' latest."""
    if directory is None:
        return counters
    total = Counters()
    total.add(counters.to_json(), alive=True)
    for path in directory.glob("*.json"):
        pid = int(path.stem)
        if pid != os.getpid():
            try:
                total.add(json.loads(path.read_text()), alive=_alive(pid))
            except (OSError, ValueError):  # a worker replacing its file right now
                continue
    return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
