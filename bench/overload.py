"""``python -m bench.overload [--quick]``: one replica offered 3x what it can serve.

What a client sees when a replica is overloaded: first the replica's capacity
(wrk, closed loop, the admitted answers a second), then a low-rate probe client
(``PROBE_RATE`` requests a second, one keep-alive connection, on the load CPU)
alone, then wrk at ``HEALTHY`` x the capacity (a healthy replica: no 503 expected),
then the probe while wrk offers ``OVERLOAD`` x the capacity over
``CONNECTIONS`` connections. Twice: straight to the replica (``app``: only its
own shedder, ``max_in_flight`` and ``max_loop_lag``), and through the toolkit's
HAProxy (``haproxy``: the shipped config's per-server maxconn and queue timeout,
pingpong_toolkit.haproxy), which runs on the load CPU as a balancer runs on a
machine of its own. The probe's admitted p99 and the latency of its 503s, and
their ratio to the unloaded probe of the same run, are the figures
docs/reliability.md records.
"""

from __future__ import annotations

import argparse
import contextlib
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
from bench.servers import LOAD_CPU, SERVER_CPU, Config, start
from pingpong_toolkit.haproxy import SERVER_MAXCONN, Balancer
from pingpong_toolkit.hog import CpuHogs

PROBE_RATE = 20.0  # requests a second: a client among many, not load itself
OVERLOAD = 3.0  # offered load, in multiples of the measured capacity
CONNECTIONS = 512  # wrk's: enough in flight to queue far past the 0.1 s SLO
WRK_NICENESS = 10
HEALTHY = 0.5  # a replica at half its capacity: the shedders must refuse nothing
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


def under_load(
    port: int, seconds: int, rate: float, connections: int, niceness: int
) -> dict[str, Any]:
    """The probe while wrk offers ``rate`` requests a second, both to ``port``."""
    load: dict[str, Any] = {}

    def offer() -> None:
        run = wrk.run(url(port), seconds, rate=rate, connections=connections, niceness=niceness)
        load["wrk"] = run.as_dict()

    thread = threading.Thread(target=offer)
    thread.start()
    time.sleep(1.0)  # the queue fills first
    answers = probe(port, seconds - 2.0)
    thread.join()
    return {**summary(answers), **load}


def measure(logs: Path, seconds: int, connections: int, maxconn: int | None) -> dict[str, Any]:
    """Capacity straight to the replica, then the probe idle and under 3x, to the
    replica or (with ``maxconn``) through HAProxy bounding it to that many requests."""
    server = start(PINGPONG, "memory://", logs)
    balancer: Balancer | None = None
    try:
        if maxconn:
            balancer = Balancer.start(logs / "haproxy", {"pingpong": server.port}, maxconn=maxconn)
        port = balancer.port if balancer else server.port
        capacity_run = wrk.run(server.url, seconds)
        capacity = (capacity_run.requests - capacity_run.non2xx) / capacity_run.seconds
        idle = summary(probe(port, seconds))
        healthy = wrk.run(url(port), seconds, rate=HEALTHY * capacity, connections=64)
        # Through HAProxy, wrk yields the load CPU to it and to the probe: the
        # balancer plays a machine of its own, the probe a client elsewhere.
        niceness = WRK_NICENESS if balancer else 0
        loaded = under_load(port, seconds + 2, OVERLOAD * capacity, connections, niceness)
        if balancer:
            loaded.update(balancer_figures(balancer))
    finally:
        if balancer:
            balancer.stop()
        server.stop()
    ratio = {
        key: round(loaded[key] / idle["admitted_p99_ms"], 1)
        for key in ("admitted_p99_ms", "shed_p99_ms")
        if loaded[key] is not None
    }
    return {
        "capacity_rps": round(capacity),
        "healthy": {"offered_rps": round(HEALTHY * capacity), **healthy.as_dict()},
        "idle": idle,
        "overload": loaded,
        "ratio": ratio,
    }


def balancer_figures(balancer: Balancer) -> dict[str, Any]:
    """What HAProxy refused, by its metrics, and how long each 503 took in it."""
    inside = [t * 1000 for t in balancer.shed_times()]  # receipt to 503, in HAProxy
    return {
        "shed_by_haproxy": balancer.shed(),
        "haproxy_503_ms": {
            "p50": percentile(inside, 0.5),
            "p99": percentile(inside, 0.99),
            "max": max(inside, default=None),
        },
    }


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/ping"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s phases instead of 8")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="wrk's, under load")
    parser.add_argument(
        "--maxconn", type=int, default=SERVER_MAXCONN, help="HAProxy's per server (shipped: 128)"
    )
    parser.add_argument("--only-haproxy", action="store_true", help="skip the app-only run")
    parser.add_argument(
        "--hogs", type=int, default=0, help="CPU hogs beside the replica: a smaller capacity"
    )
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(LOAD_CPU)})  # the probe shares the load CPU with wrk
    seconds = 3 if args.quick else 8
    hogs = CpuHogs(args.hogs, {int(SERVER_CPU)}) if args.hogs else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp, hogs:
        logs = Path(tmp)
        result: dict[str, Any] = {
            "command": " ".join(["python -m bench.overload", *(argv or sys.argv[1:])]),
            "connections": args.connections,
            "maxconn": args.maxconn,
            "hogs": args.hogs,
            "haproxy": measure(logs, seconds, args.connections, args.maxconn),
        }
        if not args.only_haproxy:
            result["app"] = measure(logs, seconds, args.connections, None)
    result["load_average"] = [round(load, 2) for load in os.getloadavg()]
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
