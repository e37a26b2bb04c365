"""Max throughput in rotation (A, B, C, A, B, C, ...), then p99 at half of it.

Every run gets a fresh server and an empty Redis with zeroed command stats.
Right after its max-throughput run, the same server is paced at 50 % of the
configuration's median req/s so far (pingpong: every round; the others: the last
round), and a pingpong run is followed by the raw callable paced at the same
rate, so the limiter's added p99 is measured within seconds of it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.servers import BenchRedis, Config, Server, running, start


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: int  # each measured max-throughput run
    warmup: int  # seconds of load before each measured run (0: none)
    paced_seconds: int  # the run at 50 % of max


def storage_url(config: Config, redis: BenchRedis) -> str:
    urls = {"redis": redis.url, "redisfar": redis.far_url}
    return urls.get(config.storage, "memory://")


def one_run(server: Server, redis: BenchRedis, plan: Plan) -> dict[str, Any]:
    """Warm up, then measure; Redis commands count from before the warmup."""
    redis.reset()
    warm = wrk.run(server.url, plan.warmup) if plan.warmup else None
    result = wrk.run(server.url, plan.seconds).as_dict()
    result["warmup_requests"] = warm.requests if warm else 0
    result["warmup_non2xx"] = warm.non2xx if warm else 0
    if server.config.storage.startswith("redis"):
        commands = redis.commands()
        result["redis_commands"] = commands
        result["redis_calls"] = sum(commands.values())
    return result


def paced(server: Server, rate: float, seconds: int) -> dict[str, Any]:
    result = wrk.run(server.url, seconds, rate=rate).as_dict()
    result["target_rps"] = round(rate, 1)
    return result


def rotate(
    configs: list[Config],
    redis: BenchRedis,
    logs: Path,
    plan: Plan,
    say: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Per configuration: ``runs``, ``paced`` (50 % of the median req/s so far; every
    round for pingpong, the last round for the others) and, for pingpong,
    ``paced_raw``: the raw callable at the same rate, right after."""
    results: dict[str, dict[str, Any]] = {
        c.name: {"runs": [], "paced": [], "paced_raw": []} for c in configs
    }
    raw_server = start(Config("raw", "raw"), "memory://", logs)  # idle between its runs
    try:
        for round_no in range(1, plan.rounds + 1):
            for config in configs:
                entry = results[config.name]
                pace = round_no == plan.rounds or config.family == "pingpong"
                with running(config, storage_url(config, redis), logs) as server:
                    run = one_run(server, redis, plan)
                    entry["runs"].append(run)
                    say(
                        f"round {round_no}/{plan.rounds} {config.name:30} "
                        f"{run['rps']:9.0f} req/s  p99 {run['p99_ms']:7.2f} ms"
                    )
                    rate = statistics.median(r["rps"] for r in entry["runs"]) / 2
                    if pace:
                        entry["paced"].append(paced(server, rate, plan.paced_seconds))
                if pace and config.family == "pingpong":
                    entry["paced_raw"].append(paced(raw_server, rate, plan.paced_seconds))
                if pace:
                    say(_paced_line(config.name, entry))
    finally:
        raw_server.stop()
    return results


def _paced_line(name: str, entry: dict[str, Any]) -> str:
    last = entry["paced"][-1]
    line = (
        f"paced {name:30} {last['rps']:7.0f}/{last['target_rps']:.0f} req/s"
        f"  p99 {last['p99_ms']:7.2f} ms"
    )
    if entry["paced_raw"]:
        line += f"  (raw at that rate: p99 {entry['paced_raw'][-1]['p99_ms']:.2f} ms)"
    return line
