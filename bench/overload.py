"""``python -m bench.overload [--quick]``: one replica offered 3x what it can serve.

What a client sees when a replica is overloaded: first the replica's capacity
(wrk, closed loop, the admitted answers a second), then a low-rate probe client
(``PROBE_RATE`` requests a second, one keep-alive connection, on the load CPU)
alone, then the same probe while wrk offers ``OVERLOAD`` x the capacity over
``CONNECTIONS`` connections, once with the load shedder as configured and once
with the loop-lag bound off (``--max-loop-lag 10``: only ``max_in_flight``, the
shedder before). The probe's admitted p99 and the latency of its 503s, and their
ratio to the unloaded probe of the same invocation, are the figures
docs/reliability.md records.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import wrk
from bench.servers import LOAD_CPU, Config, Server, start

PROBE_RATE = 20.0  # requests a second: a client among many, not load itself
OVERLOAD = 3.0  # offered load, in multiples of the measured capacity
CONNECTIONS = 512  # wrk's: enough in flight to queue far past the 0.1 s SLO
PINGPONG = Config("pingpong-memory-admitted", "pingpong", "memory", "admitted")


def probe(port: int, seconds: float, rate: float = PROBE_RATE) -> list[tuple[int, float]]:
    """(status, seconds) of each request, sent every 1/rate s on one connection."""
    answers: list[tuple[int, float]] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    due = time.perf_counter()
    end = due + seconds
    while due < end:
        time.sleep(max(0.0, due - time.perf_counter()))
        sent = time.perf_counter()
        try:
            conn.request("GET", "/ping")
            answer = conn.getresponse()
            answer.read()
            answers.append((answer.status, time.perf_counter() - sent))
        except (OSError, http.client.HTTPException):
            answers.append((0, time.perf_counter() - sent))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        due += 1 / rate
    conn.close()
    return answers


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def summary(answers: list[tuple[int, float]]) -> dict[str, Any]:
    """Milliseconds: the admitted (200) answers' p50/p99, the 503s' p50/p99/max."""
    admitted = [t * 1000 for status, t in answers if status == 200]
    shed = [t * 1000 for status, t in answers if status == 503]
    return {
        "sent": len(answers),
        "admitted": len(admitted),
        "shed": len(shed),
        "failed": sum(1 for status, _ in answers if status not in (200, 503)),
        "admitted_p50_ms": round(statistics.median(admitted), 2) if admitted else None,
        "admitted_p99_ms": percentile(admitted, 0.99),
        "shed_p50_ms": round(statistics.median(shed), 2) if shed else None,
        "shed_p99_ms": percentile(shed, 0.99),
        "shed_max_ms": round(max(shed), 2) if shed else None,
    }


def under_load(server: Server, seconds: int, rate: float, connections: int) -> dict[str, Any]:
    """The probe while wrk offers ``rate`` requests a second."""
    load: dict[str, Any] = {}

    def offer() -> None:
        load["wrk"] = wrk.run(server.url, seconds, rate=rate, connections=connections).as_dict()

    thread = threading.Thread(target=offer)
    thread.start()
    time.sleep(1.0)  # the queue fills first
    answers = probe(server.port, seconds - 2.0)
    thread.join()
    return {**summary(answers), **load}


def measure(logs: Path, seconds: int, extra: tuple[str, ...], connections: int) -> dict[str, Any]:
    server = start(PINGPONG, "memory://", logs, extra=extra)
    try:
        capacity_run = wrk.run(server.url, seconds)
        capacity = (capacity_run.requests - capacity_run.non2xx) / capacity_run.seconds
        idle = summary(probe(server.port, seconds))
        loaded = under_load(server, seconds + 2, OVERLOAD * capacity, connections)
    finally:
        server.stop()
    ratio = {
        key: round(loaded[key] / idle["admitted_p99_ms"], 1)
        for key in ("admitted_p99_ms", "shed_p99_ms")
        if loaded[key] is not None
    }
    return {"capacity_rps": round(capacity), "idle": idle, "overload": loaded, "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s phases instead of 8")
    parser.add_argument("--max-loop-lag", default="0.05", help="the setting under test")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="wrk's, under load")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(LOAD_CPU)})  # the probe shares the load CPU with wrk
    seconds = 3 if args.quick else 8
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        logs = Path(tmp)
        result: dict[str, Any] = {
            "command": "python -m bench.overload" + (" --quick" if args.quick else ""),
            "max_loop_lag": args.max_loop_lag,
            "connections": args.connections,
            "shedder": measure(
                logs, seconds, ("--max-loop-lag", args.max_loop_lag), args.connections
            ),
            "in_flight_only": measure(logs, seconds, ("--max-loop-lag", "10"), args.connections),
        }
    result["load_average"] = [round(load, 2) for load in os.getloadavg()]
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
