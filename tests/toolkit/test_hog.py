from __future__ import annotations

import os
import time
from pathlib import Path

from pingpong_toolkit.hog import CpuHogs


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_hogs_spin_on_their_cores_and_stop() -> None:
    cpus = {sorted(os.sched_getaffinity(0))[0]}
    with CpuHogs(2, cpus) as hogs:
        time.sleep(1.0)
        pids = [hog.pid for hog in hogs.processes]
        assert all(os.sched_getaffinity(pid) == cpus for pid in pids)
        assert (
            sum(cpu_seconds(pid) for pid in pids) >= 0.1
        )  # spinning (the machine is shared: not the whole core)
        processes = list(hogs.processes)
    assert not any(process.alive() for process in processes)
