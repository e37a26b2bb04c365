"""Load with per-request timings, /metrics and /proc readers, percentiles.

``timed_load`` is the closed-loop sibling of ``tests.loadgen.hammer``: the same
aiohttp client, but each worker keeps one request in flight for a duration and
records when it started, how long it took and how it ended (a status, or the
connection error), so faults can be placed on a timeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

CONNECTION_ERROR = 0  # the status recorded for a request that got no HTTP answer
Pin = Callable[[int], None]  # the ``pin`` fixture: puts a server process on its own cores


@dataclass(slots=True)
class Sample:
    start: float  # time.monotonic() when the request was sent
    latency: float  # seconds until the whole response was read
    status: int  # HTTP status, or CONNECTION_ERROR
    client: str  # the X-Forwarded-For the request carried ("" if none)
    server: str = ""  # X-Server response header (set by HAProxy), if any
    error: str = ""

    @property
    def end(self) -> float:
        return self.start + self.latency


async def timed_load(
    urls: Sequence[str],
    seconds: float,
    concurrency: int = 16,
    clients: Sequence[str] = (),
    path: str = "/ping",
    headers: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - aiohttp's per-request timeout
    pace: float = 0.0,
    into: list[Sample] | None = None,
) -> list[Sample]:
    """``concurrency`` workers, each with one request in flight at a time for
    ``seconds``; worker i speaks for ``clients[i % len(clients)]`` through
    X-Forwarded-For (so the server must trust 127.0.0.1 as a proxy). With
    ``pace``, a worker starts at most one request every ``pace`` seconds.
    Samples are appended to ``into`` as they come (a test waits on them)."""
    samples: list[Sample] = [] if into is None else into
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def worker(index: int) -> None:
            client = clients[index % len(clients)] if clients else ""
            sent = dict(headers or {})
            if client:
                sent["X-Forwarded-For"] = client
            url = urls[index % len(urls)] + path
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                started = time.monotonic()
                try:
                    async with session.get(url, headers=sent) as response:
                        await response.read()
                        status, server = response.status, response.headers.get("X-Server", "")
                    error = ""
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, server, error = CONNECTION_ERROR, "", f"{type(exc).__name__}: {exc}"
                samples.append(
                    Sample(started, time.monotonic() - started, status, client, server, error)
                )
                if pace:
                    await asyncio.sleep(max(0.0, started + pace - time.monotonic()))

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return samples


class Background:
    """Runs ``timed_load`` in a thread of its own while the test injects faults;
    ``samples`` fills as answers come, so the test can wait on what it needs."""

    def __init__(
        self,
        urls: Sequence[str],
        seconds: float,
        concurrency: int = 16,
        clients: Sequence[str] = (),
        pace: float = 0.0,
    ) -> None:
        self.stop = threading.Event()
        self.samples: list[Sample] = []
        self.error: BaseException | None = None
        load = timed_load(
            urls, seconds, concurrency, clients, stop=self.stop, pace=pace, into=self.samples
        )
        self._thread = threading.Thread(target=self._run, args=(load,), daemon=True)

    def _run(self, load: Coroutine[Any, Any, list[Sample]]) -> None:
        try:
            asyncio.run(load)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def served(self, after: float = 0.0, client: str | None = None) -> set[str]:
        """Servers (X-Server) that answered 200 to requests sent after ``after``."""
        return {
            s.server
            for s in list(self.samples)
            if s.status == 200 and s.start > after and client in (None, s.client)
        }

    def answered(self, after: float, clients: Iterable[str]) -> bool:
        """Every one of ``clients`` has an answer to a request sent after ``after``."""
        return self.answered_times(after, clients, 1)

    def answered_times(self, after: float, clients: Iterable[str], times: int) -> bool:
        """Every one of ``clients`` has ``times`` answers to requests sent after ``after``."""
        counts = Counter(s.client for s in list(self.samples) if s.start > after)
        return all(counts[client] >= times for client in clients)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.join()

    def join(self, timeout: float = 60) -> list[Sample]:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.samples


class MetricPoller:
    """Samples one gauge from /metrics every ``interval`` s: [(time, value)]."""

    def __init__(self, url: str, name: str, interval: float = 0.05) -> None:
        self.url, self.name, self.interval = url, name, interval
        self.values: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                try:
                    value = metric(self.url, self.name, client)
                except httpx.HTTPError:
                    value = float("nan")
                self.values.append((time.monotonic(), value))
                self._stop.wait(self.interval)

    def __enter__(self) -> MetricPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def first(self, value: float, after: float = 0.0) -> float | None:
        """When the gauge was first seen at ``value`` after ``after``."""
        return next((t for t, v in self.values if t >= after and v == value), None)


def timeline(samples: Sequence[Sample], origin: float, step: float = 0.25) -> str:
    """Status counts per ``step`` seconds from ``origin``: for failure messages."""
    if not samples:
        return "(no samples)"
    lines = []
    first, last = min(s.start for s in samples), max(s.start for s in samples)
    at = origin + step * ((first - origin) // step)
    while at <= last:
        codes: dict[int, int] = {}
        for sample in samples:
            if at <= sample.start < at + step:
                codes[sample.status] = codes.get(sample.status, 0) + 1
        lines.append(f"{at - origin:+7.2f}s {dict(sorted(codes.items()))}")
        at += step
    return "\n".join(lines)


def metric(url: str, name: str, client: httpx.Client | None = None) -> float:
    """Sum of the samples whose line starts with ``name`` (a name, or name{labels)."""
    text = (client.get(url + "/metrics") if client else httpx.get(url + "/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def assert_shed_counted(
    answers: Iterable[int], urls: Iterable[str], allowed: Iterable[int] = (200, 429)
) -> int:
    """Every status of ``answers`` is one of ``allowed``, or a 503 the load shedder
    counted (a replica on a loaded core whose loop lagged past max_loop_lag): the
    503s seen equal ``pingpong_http_requests_shed_total`` over ``urls`` (the only
    traffic they had), so a storage 503 or a failure cannot pass for a shed.
    Polled: workers publish their counters once a second. Returns the 503s."""
    statuses = Counter(answers)
    unexpected = set(statuses) - set(allowed) - {503}
    assert not unexpected, dict(statuses)
    servers = list(urls)

    def shed() -> float:
        return sum(metric(url, "pingpong_http_requests_shed_total") for url in servers)

    deadline = time.monotonic() + 3.0
    while shed() != statuses[503] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert shed() == statuses[503], (dict(statuses), shed())
    return statuses[503]


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def report(name: str, **figures: object) -> None:
    """Print measured figures, and append them to $PINGPONG_RELIABILITY_REPORT
    (JSON lines) when set: docs/reliability.md quotes them."""
    line = json.dumps({"test": name, **figures}, default=str)
    print(line)
    target = os.environ.get("PINGPONG_RELIABILITY_REPORT")
    if target:
        with open(target, "a") as out:
            out.write(line + "\n")


@dataclass
class Window:
    """Samples split by time: before, during [start, end) and after a fault."""

    samples: list[Sample]
    start: float
    end: float
    during: list[Sample] = field(init=False)
    before: list[Sample] = field(init=False)
    after: list[Sample] = field(init=False)

    def __post_init__(self) -> None:
        self.before = [s for s in self.samples if s.end < self.start]
        self.during = [s for s in self.samples if s.start >= self.start and s.end <= self.end]
        self.after = [s for s in self.samples if s.start > self.end]
