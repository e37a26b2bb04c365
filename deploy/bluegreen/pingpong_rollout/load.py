"""A steady, bounded stream of GET /ping, for drills and the end-to-end tests.

Steady (a fixed request rate, not "as fast as possible") so that a step's
share of traffic is a share of a known number, and so the client has CPU left
on a small machine. Bounded both in requests and in seconds, whatever happens
to the code that started it. Every answer is kept with the slot that served it
(HAProxy's X-Served-By header): that is the client-side proof that the shift
happened and cost nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass(frozen=True)
class Answer:
    """One request as the client saw it."""

    sent: float  # wall clock (time.time()), comparable with the rollout report
    latency: float  # seconds
    status: int | None  # None: no HTTP answer at all
    served_by: str | None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """A connection error or a 5xx: what the SLO counts against us."""
        return self.status is None or self.status >= 500


@dataclass
class LoadSummary:
    answers: list[Answer] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.answers)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.failed]

    def by_status(self) -> dict[str, int]:
        return dict(Counter(str(a.status or a.error) for a in self.answers))

    def by_slot(self) -> dict[str, int]:
        return dict(Counter(a.served_by or "none" for a in self.answers))

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.total,
            "failed": len(self.failures()),
            "by_status": self.by_status(),
            "by_slot": self.by_slot(),
        }


class SteadyLoad:
    """``rate`` requests per second to ``url`` in a background thread."""

    def __init__(
        self,
        url: str,
        rate: float,
        *,
        max_seconds: float,
        max_requests: int,
        headers: dict[str, str] | None = None,
        concurrency: int = 64,
        timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("http://127.", "http://localhost")):
            raise ValueError(f"load goes to loopback only, not {url}")
        self.url = url
        self.interval = 1.0 / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.headers = headers or {}
        self.concurrency = concurrency
        self.timeout = timeout
        self.summary = LoadSummary()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    def start(self) -> SteadyLoad:
        self._thread.start()
        return self

    def stop(self) -> LoadSummary:
        """Stop sending, wait for the requests in flight, return every answer."""
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self.summary

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._send_all())

    async def _send_all(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        slots = asyncio.Semaphore(self.concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            sent = 0
            while not self._stop.is_set() and sent < self.max_requests:
                next_at = start + sent * self.interval
                if next_at - start > self.max_seconds:
                    break
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await slots.acquire()
                task = asyncio.create_task(self._one(session, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.gather(*tasks)

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        sent, started = time.time(), time.perf_counter()
        try:
            async with session.get(self.url, headers=self.headers) as response:
                await response.read()
                answer = Answer(
                    sent,
                    time.perf_counter() - started,
                    response.status,
                    response.headers.get("X-Served-By"),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
            answer = Answer(sent, time.perf_counter() - started, None, None, error)
        finally:
            slots.release()
        self.summary.answers.append(answer)
