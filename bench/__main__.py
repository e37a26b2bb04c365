"""``python -m bench [--quick]``: pingpong against its peers, in one run.

Installs the peers (bench/.peers-venv), starts a private redis-server, measures
every configuration in rotation with wrk, then accuracy, memory and the p99 at
half load, prints one table and writes bench/results/latest.{json,png}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import accuracy, memory, report
from bench.env import (
    BENCH,
    REPO,
    busy_share,
    ensure_peers_venv,
    load_average,
    machine,
    machine_line,
    peers_bin,
    require_tools,
    source,
)
from bench.servers import LOAD_CPU, SERVER_CPU, BenchRedis, all_configs
from bench.throughput import Plan, rotate


@dataclass(frozen=True)
class Mode:
    """How long and how big each part of a run is."""

    rounds: int  # runs per configuration, in rotation
    seconds: int  # each measured max-throughput wrk run
    warmup: int  # wrk seconds before each measured run (0: none)
    paced: int  # wrk seconds at 50 % of max
    accuracy: float  # seconds of load on the 3 replicas
    keys: int  # distinct keys in memory://
    refill: float  # seconds of new keys after the first ones went idle
    redis_keys: int  # distinct clients sent through pingpong to Redis


FULL = Mode(3, 5, 1, 3, 6.0, 1_000_000, 30.0, 10_000)
QUICK = Mode(1, 2, 0, 1, 2.0, 100_000, 5.0, 1_000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every configuration, briefly")
    parser.add_argument("--rounds", type=int, help="runs per configuration, in rotation")
    parser.add_argument("--duration", type=int, help="seconds per measured wrk run")
    parser.add_argument("--only", help="comma-separated configuration names (debugging)")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="results directory")
    return parser.parse_args(argv)


STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress, on stderr; the table goes to stdout."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    mode = QUICK if args.quick else FULL
    mode = replace(mode, rounds=args.rounds or mode.rounds, seconds=args.duration or mode.seconds)
    require_tools()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {int(LOAD_CPU)})  # the bench's own load shares wrk's CPU
    installed = ensure_peers_venv(say)
    configs = all_configs()
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.name in wanted]
    plan = Plan(mode.rounds, mode.seconds, mode.warmup, mode.paced)
    data: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "source": source(),
        "settings": {
            **asdict(mode),
            "server_cpu": SERVER_CPU,
            "load_cpu": LOAD_CPU,
            "wrk": "-t1 -c32 --latency",
            "peers_installed_now": installed,
        },
    }
    say(f"machine: {machine_line(data['machine'])}")
    logs = Path(tempfile.mkdtemp(prefix="pingpong-bench-"))
    redis = BenchRedis(logs)
    ok = False
    try:
        results = rotate(configs, redis, logs, plan, say)
        data["accuracy"] = {}
        for family in ("pingpong", "slowapi", "flask-limiter"):
            data["accuracy"][family] = found = accuracy.run(family, redis, logs, mode.accuracy)
            say(f"accuracy {family}: {found['admitted']} admitted, bound {found['gcra_bound']}")
        data["redis_keys"] = memory.redis_keys(redis, logs, mode.redis_keys)
        say(f"redis keys: {data['redis_keys']['keys']} keys, {data['redis_keys']['types']}")
        ok = True
    finally:
        redis.stop()
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            say(f"failed; server logs kept in {logs}")
    data["memory"] = memory.in_process(mode.keys, mode.refill)
    say(f"memory: {data['memory']['bytes_per_key']} B/key")
    data["runs"] = results
    data["summary"] = {name: report.summarize_config(entry) for name, entry in results.items()}
    data["targets"] = report.targets(data)
    data["machine"]["load_average_end"] = load_average()
    data["machine"]["other_cpu_busy_end"] = busy_share()
    data["source"]["src_digest_end"] = source()["src_digest"]
    if data["source"]["src_digest_end"] != data["source"]["src_digest"]:
        say("WARNING: src/pingpong changed during the run: rounds measured different code")
    data["elapsed_s"] = round(time.monotonic() - began, 1)
    print(f"machine: {machine_line(data['machine'])}")
    code = data["source"]
    dirty = ", src/ modified" if code["src_modified"] else ""
    print(f"code: pingpong at {code['commit']}{dirty} (src digest {code['src_digest']})")
    print(noise_line(data["machine"]))
    print(report.table(data))
    write(data, args.out.resolve(), full=not args.quick)
    say(f"done in {time.monotonic() - began:.0f} s; results in {args.out}")
    return 0


def noise_line(info: dict[str, Any]) -> str:
    """How busy the machine was with other work, just before and just after."""
    shares = [info.get("other_cpu_busy_start"), info.get("other_cpu_busy_end")]
    busy = max((s for s in shares if s is not None), default=0.0)
    line = (
        f"other work on the machine: {shares[0]:.0%} / {shares[1]:.0%} of all CPUs busy "
        f"before / after the run (load average {info['load_average_start']} / "
        f"{info['load_average_end']})"
        if None not in shares
        else f"load average {info['load_average_start']} / {info['load_average_end']}"
    )
    return line + (" -- NOISY: compare ratios only" if busy > 0.15 else "")


def write(data: dict[str, Any], out: Path, full: bool) -> None:
    """latest.json and latest.png; a full run also keeps full.json and full.png,
    which docs/performance.md cites and a quick run never overwrites."""
    path = out / "latest.json"
    report.write_json(path, data)
    subprocess.run(
        [str(peers_bin("python")), "-m", "bench.chart", str(path), str(out / "latest.png")],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    if full:
        shutil.copyfile(path, out / "full.json")
        shutil.copyfile(out / "latest.png", out / "full.png")


if __name__ == "__main__":
    sys.exit(main())
