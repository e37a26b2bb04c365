"""CPU pressure: processes that spin on given cores, as a noisy neighbour or a
container's CPU limit would take the servers' time.

``with CpuHogs(count=2, cpus={0}):`` starts ``count`` spinning processes pinned
to ``cpus`` (all of this process's CPUs by default) and stops them on exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Set
from types import TracebackType

from pingpong_toolkit.processes import Process

SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


class CpuHogs:
    """``count`` busy loops, each bounded to ``seconds`` even if never stopped."""

    def __init__(self, count: int, cpus: Set[int] | None = None, seconds: float = 300.0) -> None:
        self.count = count
        self.cpus = set(cpus) if cpus is not None else os.sched_getaffinity(0)
        self.seconds = seconds
        self.processes: list[Process] = []

    def start(self) -> CpuHogs:
        code = SPIN.format(seconds=self.seconds)
        for index in range(self.count):
            hog = Process.start(f"cpu-hog-{index}", [sys.executable, "-c", code])
            os.sched_setaffinity(hog.pid, self.cpus)
            self.processes.append(hog)
        return self

    def stop(self) -> None:
        for hog in self.processes:
            hog.kill()
        self.processes.clear()

    def __enter__(self) -> CpuHogs:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
