#!/usr/bin/env python3
"""Blue-green rollout of pingpong on one machine, through a real HAProxy.

    rollout.py run    ...   blue and HAProxy already run (the normal case):
                            start green, shift traffic step by step while
                            green's metrics pass, then drain blue; or roll back.
    rollout.py drill  ...   the same, self-contained: starts Redis, blue,
                            HAProxy and a steady load itself, then cleans up.
    rollout.py render-config ...   print haproxy.cfg for a standing setup.

Exit status: 0 promoted, 1 rolled back (analysis failed or interrupted),
2 usage error, 3 could not start (HAProxy unreachable, blue not serving, green
never ready). See docs/bluegreen.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules

from green_analysis import Snapshot, Thresholds, Verdict, fmt_ratio, fmt_seconds, judge, scrape
from haproxy_api import HAProxyError, RuntimeAPI, render_config
from rollout_report import Report
from steady_load import SteadyLoad

PROMOTED, ROLLED_BACK, USAGE, NOT_STARTED = 0, 1, 2, 3


class Interrupted(Exception):
    """SIGINT/SIGTERM during the rollout: roll back, then exit."""


class StartFailed(Exception):
    """Nothing was shifted: a precondition did not hold."""


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A process the rollout may have to stop: our child, or someone else's PID."""

    name: str
    pid: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    url: str | None = None  # base URL (for /readyz and /metrics)
    log: Path | None = None

    def __post_init__(self) -> None:
        if self.popen is not None:
            self.pid = self.popen.pid

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is None or pid_alive(self.pid)  # no pid: assume it runs

    def terminate(self) -> None:
        """SIGTERM: pingpong reports not-ready, drains, then exits 0."""
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The exit code (None: not our child, gone with an unknown code).

        Raises TimeoutError if it is still running after ``timeout``.
        """
        if self.popen is not None:
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{self.name} still running after {timeout}s") from None
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout}s")
            time.sleep(0.1)
        return None

    def stop(self, timeout: float) -> int | None:
        """terminate() then wait(), killing it if it overstays."""
        self.terminate()
        try:
            return self.wait(timeout)
        except TimeoutError:
            if self.pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            return self.wait(5)


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie (a process exited but not reaped by its parent
    still answers kill(0): a test harness that started blue reaps it later)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` (exceptions count as "not yet") until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            if predicate():
                return True
        time.sleep(interval)
    return False


def ready(url: str) -> bool:
    return httpx.get(url + "/readyz", timeout=1).status_code == 200


def wait_ready(proc: Proc, timeout: float) -> None:
    """Until /readyz answers 200; a process that exits meanwhile fails at once."""
    deadline = time.monotonic() + timeout
    while not wait_for(lambda: ready(proc.url or ""), 0.2):
        if not proc.alive():
            raise StartFailed(f"{proc.name} exited before it was ready:\n{tail(proc.log)}")
        if time.monotonic() > deadline:
            raise StartFailed(f"{proc.name} not ready within {timeout}s (log {proc.log})")


def tail(log: Path | None, lines: int = 5) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def pingpong_command(explicit: str | None) -> list[str]:
    """``pingpong`` from the same venv as this interpreter, else from PATH."""
    if explicit:
        return [explicit]
    sibling = Path(sys.executable).with_name("pingpong")
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which("pingpong")
    if found:
        return [found]
    return [sys.executable, "-m", "pingpong.cli"]


def start_pingpong(
    name: str, command: list[str], host: str, port: int, env: dict[str, str], log: Path
) -> Proc:
    """``pingpong serve`` in its own session, so it outlives this tool (a promoted
    green keeps serving) and a Ctrl-C here reaches the tool, not the service."""
    log.parent.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(
        [*command, "serve", "--host", host, "--port", str(port)],
        env={**os.environ, **env, "PINGPONG_SLOT": name},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Proc(name, popen=popen, url=f"http://{host}:{port}", log=log)


# --------------------------------------------------------------------------- the rollout


@dataclass(frozen=True)
class Plan:
    steps: list[int]  # green's share of traffic, percent, ending at 100
    pause: float  # seconds each step is observed
    sample_interval: float  # seconds between two reads of /metrics
    settle: float  # seconds observed before the first step and after the decision
    thresholds: Thresholds
    fail_fast: bool  # decide a failing step before its pause is over
    ready_timeout: float
    drain_timeout: float


@dataclass
class Rollout:
    """One release: HAProxy's two server slots, the processes behind them, the record."""

    api: RuntimeAPI
    plan: Plan
    blue_server: str
    green_server: str
    blue: Proc
    green: Proc | None
    report: Report
    weights: dict[str, int] = field(default_factory=dict)

    # -- output

    def say(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        print(f"{stamp}Z {message}", flush=True)
        self.report.event(time.time(), message)

    def set_weights(self, green_share: int) -> None:
        """green gets ``green_share`` percent, blue the rest: one step of the shift."""
        self.weights = {self.blue_server: 100 - green_share, self.green_server: green_share}
        self.api.set_weights(self.weights)
        now = time.time()
        self.report.weights.append(
            {"t": now, "elapsed": round(now - self.report.started, 3),
             "blue": 100 - green_share, "green": green_share}
        )  # fmt: skip

    # -- observation

    def observe(self, phase: str, seconds: float, fail_fast: bool = False) -> Verdict | None:
        """Read green (and blue) every sample_interval for ``seconds``; record the
        timeline; return the verdict on the whole window (None: nothing judged)."""
        green_url = self.green.url if self.green else None
        first = scrape(green_url) if green_url else None
        last, blue_last, last_t = first, self._scrape_blue(), time.monotonic()
        end = last_t + seconds
        while (now := time.monotonic()) < end:
            time.sleep(min(self.plan.sample_interval, end - now))
            current = scrape(green_url) if green_url else None
            blue_now, now = self._scrape_blue(), time.monotonic()
            self._record(phase, now - last_t, current, last, blue_now, blue_last)
            last, blue_last, last_t = current, blue_now, now
            if fail_fast and first is not None and current is not None:
                verdict = judge(current - first, self.plan.thresholds)
                if not verdict.passed and verdict.requests >= self.plan.thresholds.min_requests:
                    return verdict  # already conclusive: do not feed green more traffic
        if first is None or last is None:
            return judge(None, self.plan.thresholds)
        return judge(last - first, self.plan.thresholds)

    def _scrape_blue(self) -> Snapshot | None:
        return scrape(self.blue.url) if self.blue.url and self.blue.alive() else None

    def _record(
        self,
        phase: str,
        dt: float,
        green: Snapshot | None,
        green_before: Snapshot | None,
        blue: Snapshot | None,
        blue_before: Snapshot | None,
    ) -> None:
        green_window = green - green_before if green and green_before else None
        blue_window = blue - blue_before if blue and blue_before else None
        now = time.time()
        self.report.timeline.append(
            {
                "t": now,
                "elapsed": round(now - self.report.started, 3),
                "window": round(dt, 3),
                "phase": phase,
                "weight_blue": self.weights.get(self.blue_server),
                "weight_green": self.weights.get(self.green_server),
                "green_requests": green_window.requests if green_window else None,
                "green_rps": round(green_window.requests / dt, 2) if green_window else None,
                "blue_rps": round(blue_window.requests / dt, 2) if blue_window else None,
                "green_error_ratio": green_window.error_ratio() if green_window else None,
                "green_p99": green_window.quantile(0.99) if green_window else None,
            }
        )

    # -- the phases

    def preflight(self) -> None:
        """Blue serves and has all the traffic; the green slot has none."""
        blue = self.api.server(self.blue_server)
        self.api.server(self.green_server)  # exists
        if not blue.up:
            raise StartFailed(f"HAProxy server {self.blue_server} is {blue.status}, not serving")
        if self.blue.url and not wait_for(lambda: ready(self.blue.url or ""), 5):
            raise StartFailed(f"blue at {self.blue.url} is not ready")
        self.set_weights(0)
        self.say(f"preflight ok: {self.blue_server} {blue.status}, weights {self.weights}")

    def start_green(self, green: Proc, host: str, port: int) -> None:
        """Point the green slot at the new process, wait until both it and HAProxy
        say it is ready (HAProxy's checks are what routing obeys)."""
        self.green = green
        self.report.green.update({"pid": green.pid, "url": green.url, "log": str(green.log)})
        self.api.set_addr(self.green_server, host, port)
        self.api.set_state(self.green_server, "ready")
        self.say(f"{self.green_server} (new) started: pid {green.pid} on {green.url}")
        wait_ready(green, self.plan.ready_timeout)
        if not self.api.wait_status(self.green_server, up=True, timeout=self.plan.ready_timeout):
            raise StartFailed("HAProxy's health checks never saw green up")
        self.say(f"{self.green_server} (new) ready: /readyz 200, HAProxy check UP")

    def shift(self) -> Verdict | None:
        """Every step: move weights, observe, judge. The first failure stops."""
        self.observe("baseline", self.plan.settle)
        for index, share in enumerate(self.plan.steps, 1):
            started = time.time()
            self.set_weights(share)
            verdict = self.observe(f"step {index}", self.plan.pause, self.plan.fail_fast)
            assert verdict is not None
            self.report.steps.append(
                {
                    "step": index,
                    "weights": dict(self.weights),
                    "started": started,
                    "ended": time.time(),
                    **verdict.as_dict(),
                }
            )
            self.say(self.step_line(index, share, verdict))
            if not verdict.passed:
                return verdict
        return None

    def step_line(self, index: int, share: int, verdict: Verdict) -> str:
        """One line per step: weights, what green answered, the verdict."""
        outcome = "PASS" if verdict.passed else f"FAIL ({verdict.reason})"
        return (
            f"step {index}/{len(self.plan.steps)} weights {self.blue_server}={100 - share} "
            f"{self.green_server}={share} | {self.green_server} (new): "
            f"{verdict.requests} requests, error ratio {fmt_ratio(verdict.error_ratio)}, "
            f"p99 {fmt_seconds(verdict.p99)} | {outcome}"
        )

    def roll_back(self, reason: str) -> None:
        """All traffic to blue first (nothing new reaches green), then stop green."""
        self.set_weights(0)
        self.report.outcome, self.report.reason = "rolled_back", reason
        self.report.decided_at = time.time()
        self.say(f"ROLLBACK: {reason}; weights {self.weights}")
        self.observe("rolled back", self.plan.settle)
        if self.green is not None:
            code = self.green.stop(self.plan.drain_timeout)
            self.report.green["exit_code"] = code
            self.say(f"{self.green_server} (new) stopped (exit {code})")

    def promote(self) -> None:
        """Green has everything: drain blue (no new requests, open ones finish,
        then SIGTERM so pingpong's own drain runs) and wait for it to exit."""
        self.report.outcome, self.report.reason = "promoted", ""
        self.report.decided_at = time.time()
        self.say(f"PROMOTED: {self.green_server} has 100% of the traffic")
        self.api.set_state(self.blue_server, "drain")
        self.observe("promoted", self.plan.settle)
        idle = self.api.wait_idle(self.blue_server, self.plan.drain_timeout)
        state = "no open sessions" if idle else "timed out"
        self.say(f"{self.blue_server} (old) drained in HAProxy: {state}")
        if self.blue.pid is None:
            self.say(f"{self.blue_server} (old): no --blue-pid, left running at weight 0")
            return
        self.blue.terminate()
        code = self.blue.wait(self.plan.drain_timeout)
        self.report.blue["exit_code"] = code
        how = f"code {code}" if code is not None else "not our child: code unknown"
        self.say(f"{self.blue_server} (old) pid {self.blue.pid} exited ({how})")

    def execute(self, start: Callable[[], tuple[Proc, str, int]]) -> int:
        """preflight, start green (``start()`` -> (Proc, host, port)), shift, decide."""
        try:
            with interrupts_raise():
                self.preflight()
                self.start_green(*start())
                failed = self.shift()
                if failed is None:
                    self.promote()
                    return PROMOTED
                self.roll_back(failed.reason)
                return ROLLED_BACK
        except StartFailed as exc:
            self.report.outcome, self.report.reason = "not_started", str(exc)
            self.say(f"NOT STARTED: {exc}")
            self._stop_green()
            return NOT_STARTED
        except Interrupted as exc:
            if self.report.outcome == "promoted":  # blue may be draining: no way back
                self.say(f"interrupted ({exc}) while draining blue: green keeps the traffic")
                return PROMOTED
            self.roll_back(f"interrupted ({exc})")
            return ROLLED_BACK
        except HAProxyError as exc:
            self.say(f"HAProxy error: {exc}")
            with suppress(HAProxyError):
                self.roll_back(f"HAProxy error: {exc}")
            self._stop_green()
            shifted = any(change["green"] > 0 for change in self.report.weights)
            self.report.outcome = "rolled_back" if shifted else "not_started"
            self.report.reason = f"HAProxy error: {exc}"
            return ROLLED_BACK if shifted else NOT_STARTED
        finally:
            self.report.finished = time.time()

    def _stop_green(self) -> None:
        if self.green is not None and self.green.alive():
            self.report.green["exit_code"] = self.green.stop(self.plan.drain_timeout)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Ctrl-C or SIGTERM mid-rollout become Interrupted, so the rollback runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- commands


def plan_from(args: argparse.Namespace) -> Plan:
    return Plan(
        steps=args.steps,
        pause=args.pause,
        sample_interval=args.sample_interval,
        settle=args.settle,
        thresholds=Thresholds(args.max_error_ratio, args.max_p99, args.min_requests),
        fail_fast=not args.no_fail_fast,
        ready_timeout=args.ready_timeout,
        drain_timeout=args.drain_timeout,
    )


def report_config(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "steps": args.steps,
        "pause": args.pause,
        "sample_interval": args.sample_interval,
        "max_error_ratio": args.max_error_ratio,
        "max_p99": args.max_p99,
        "min_requests": args.min_requests,
        "fail_fast": not args.no_fail_fast,
        "green_env": dict(args.green_env),
    }


def finish(report: Report, directory: Path, code: int) -> int:
    json_path, png_path = report.write(directory)
    print(f"report: {json_path}" + (f", {png_path}" if png_path else ""))
    print(f"outcome: {report.outcome}{' (' + report.reason + ')' if report.reason else ''}")
    return code


def command_run(args: argparse.Namespace) -> int:
    """The normal case: HAProxy and blue are already there."""
    storage = args.storage or os.environ.get("PINGPONG_STORAGE", "")
    if not storage.startswith("redis"):
        print(
            "rollout: --storage must be blue's Redis (redis://...): green has to share "
            "blue's rate-limit keys, or every client's quota resets",
            file=sys.stderr,
        )
        return USAGE
    report = Report(config=report_config(args, "run"), started=time.time())
    blue = Proc(args.blue_server, pid=args.blue_pid, url=args.blue_url)
    api = RuntimeAPI(args.haproxy_socket, args.backend)
    rollout = Rollout(api, plan_from(args), args.blue_server, args.green_server, blue, None, report)
    report.blue.update({"pid": args.blue_pid, "url": args.blue_url})

    def start() -> tuple[Proc, str, int]:
        port = args.green_port or free_port()
        env = {"PINGPONG_STORAGE": storage, **dict(args.green_env)}
        log = args.green_log or args.report_dir / "green.log"
        green = start_pingpong(
            args.green_server, pingpong_command(args.pingpong), args.green_host, port, env, log
        )
        if args.green_pidfile:
            args.green_pidfile.write_text(f"{green.pid}\n")
        return green, args.green_host, port

    return finish(report, args.report_dir, rollout.execute(start))


@dataclass
class Stack:
    """What a drill starts and must stop: Redis, HAProxy, blue (children)."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                proc.stop(15)


def start_redis(stack: Stack) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartFailed("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    popen = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=(stack.workdir / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    stack.add(Proc("redis", popen=popen))
    url = f"redis://127.0.0.1:{port}/0"
    if not wait_for(lambda: port_open(port), 10):
        raise StartFailed("redis-server did not start")
    return url


def start_haproxy(stack: Stack, frontend: int, blue_port: int, green_port: int) -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        raise StartFailed("haproxy is not installed (apt-get install haproxy)")
    sock = stack.workdir / "haproxy.sock"
    config = stack.workdir / "haproxy.cfg"
    config.write_text(
        render_config(
            bind=f"127.0.0.1:{frontend}",
            blue_addr=f"127.0.0.1:{blue_port}",
            green_addr=f"127.0.0.1:{green_port}",
            socket_path=str(sock),
        )
    )
    popen = subprocess.Popen(
        [binary, "-db", "-f", str(config)],
        stdout=(stack.workdir / "haproxy.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    stack.add(Proc("haproxy", popen=popen))
    if not wait_for(lambda: RuntimeAPI(str(sock), "pingpong").server("blue").up, 15):
        raise StartFailed(f"HAProxy never saw blue up (see {stack.workdir / 'haproxy.log'})")
    return str(sock)


def command_drill(args: argparse.Namespace) -> int:
    """Everything on loopback, started here: Redis, blue, HAProxy, steady load."""
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bluegreen-drill-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir)
    report = Report(config=report_config(args, "drill"), started=time.time())
    shared = {
        "PINGPONG_LIMIT": args.limit,
        "PINGPONG_DRAIN_SECONDS": str(args.drain_seconds),
        "PINGPONG_TRUSTED_PROXY": "127.0.0.1/32",
    }
    faults = {
        "PINGPONG_FAULT_ERROR_RATE": str(args.fault_error_rate),
        "PINGPONG_FAULT_DELAY": str(args.fault_delay),
    }
    command = pingpong_command(args.pingpong)
    print(f"drill: working directory {workdir}")
    try:
        storage = args.storage or start_redis(stack)
        shared["PINGPONG_STORAGE"] = storage
        blue_port, green_port, frontend = free_port(), free_port(), args.port or free_port()
        blue = stack.add(
            start_pingpong("blue", command, "127.0.0.1", blue_port, shared, workdir / "blue.log")
        )
        if not wait_for(lambda: ready(blue.url or ""), 20):
            raise StartFailed(f"blue did not start (see {blue.log})")
        sock = start_haproxy(stack, frontend, blue_port, green_port)
    except StartFailed as exc:
        print(f"drill: {exc}", file=sys.stderr)
        stack.close()
        return NOT_STARTED
    plan = plan_from(args)
    budget = plan.settle * 3 + plan.pause * len(plan.steps) + plan.drain_timeout + 30
    load = SteadyLoad(
        f"http://127.0.0.1:{frontend}/ping",
        args.load_rate,
        max_seconds=budget,
        max_requests=int(args.load_rate * budget),
    )
    api = RuntimeAPI(sock, "pingpong")
    rollout = Rollout(api, plan, "blue", "green", blue, None, report)
    report.blue.update({"pid": blue.pid, "url": blue.url})
    report.config.update(
        {
            "load_rate": args.load_rate,
            "limit": args.limit,
            "frontend": f"http://127.0.0.1:{frontend}",
        }
    )

    def start() -> tuple[Proc, str, int]:
        env = {**shared, **faults, **dict(args.green_env)}
        green = start_pingpong(
            "green", command, "127.0.0.1", green_port, env, workdir / "green.log"
        )
        stack.add(green)
        return green, "127.0.0.1", green_port

    print(f"drill: load {args.load_rate} req/s on {load.url}; faults {faults}")
    try:
        with load:
            code = rollout.execute(start)
        summary = load.summary
        report.load = summary.as_dict()
        print(
            f"client side: {summary.total} requests, {len(summary.failures())} failed, "
            f"by status {summary.by_status()}, by slot {summary.by_slot()}"
        )
    finally:
        stack.close()
    return finish(report, args.report_dir, code)


def command_render(args: argparse.Namespace) -> int:
    print(
        render_config(
            bind=f"{args.bind_host}:{args.frontend_port}",
            blue_addr=f"127.0.0.1:{args.blue_port}",
            green_addr=f"127.0.0.1:{args.green_port}",
            socket_path=args.socket,
        ),
        end="",
    )
    return 0


# --------------------------------------------------------------------------- arguments


def steps(text: str) -> list[int]:
    """'10,25,50,100': increasing percentages that end at 100."""
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or values[-1] != 100 or values != sorted(set(values)) or values[0] <= 0:
        raise argparse.ArgumentTypeError("increasing percentages in 1..100 ending at 100")
    return values


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return key, value


def add_rollout_options(parser: argparse.ArgumentParser, pause: float, settle: float) -> None:
    plan = parser.add_argument_group("steps and thresholds")
    plan.add_argument(
        "--steps",
        type=steps,
        default=[10, 25, 50, 100],
        help="green's traffic share per step, percent (default 10,25,50,100)",
    )
    plan.add_argument(
        "--pause",
        type=float,
        default=pause,
        help=f"seconds each step is observed (default {pause:g})",
    )
    plan.add_argument(
        "--sample-interval",
        type=float,
        default=1.0,
        help="seconds between two reads of /metrics (default 1)",
    )
    plan.add_argument(
        "--settle",
        type=float,
        default=settle,
        help=f"seconds observed before the first step and after the decision (default {settle:g})",
    )
    plan.add_argument(
        "--max-error-ratio",
        type=float,
        default=0.001,
        help="highest 5xx/requests ratio of green per step; 429 is a success "
        "(default 0.001, the 99.9%% SLO)",
    )
    plan.add_argument(
        "--max-p99",
        type=float,
        default=0.25,
        help="highest p99 latency of green's /ping per step, seconds (default 0.25)",
    )
    plan.add_argument(
        "--min-requests",
        type=int,
        default=20,
        help="fewer green requests in a step is 'no data': a failure (default 20)",
    )
    plan.add_argument(
        "--no-fail-fast",
        action="store_true",
        help="always observe a step for its whole pause before deciding",
    )
    plan.add_argument(
        "--ready-timeout",
        type=float,
        default=30.0,
        help="seconds green has to become ready (default 30)",
    )
    plan.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds the old side has to drain and exit (default 60)",
    )
    parser.add_argument(
        "--green-env",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of green, e.g. PINGPONG_CONFIG=/etc/pingpong.yaml, "
        "PINGPONG_COMMIT=abc123 (repeatable)",
    )
    parser.add_argument("--pingpong", help="the pingpong command (default: this venv's)")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("bluegreen-report"),
        help="where report.json and report.png go (default ./bluegreen-report)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout.py",
        description="Blue-green rollout of pingpong through HAProxy's runtime API: "
        "start green, shift traffic in steps while green's /metrics pass, "
        "then drain blue; roll back on the first failing step.",
        epilog="Exit status: 0 promoted, 1 rolled back, 2 usage error, 3 not started.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="roll out next to a running blue and HAProxy", description=command_run.__doc__
    )
    run.add_argument(
        "--haproxy-socket", required=True, help="runtime API: a unix socket path or HOST:PORT"
    )
    run.add_argument("--backend", default="pingpong", help="HAProxy backend (default pingpong)")
    run.add_argument("--blue-server", default="blue", help="blue's server name (default blue)")
    run.add_argument(
        "--green-server",
        default="green",
        help="the free slot's server name, also green's PINGPONG_SLOT "
        "(default green; after a promotion, swap the two names)",
    )
    run.add_argument("--blue-url", help="blue's base URL (readiness, request-rate chart)")
    run.add_argument(
        "--blue-pid",
        type=int,
        help="blue's pid: SIGTERM after the drain (without it blue is left at 0)",
    )
    run.add_argument("--storage", help="blue's Redis URL, shared by green (or PINGPONG_STORAGE)")
    run.add_argument("--green-host", default="127.0.0.1", help="green's listen address")
    run.add_argument("--green-port", type=int, help="green's port (default: a free one)")
    run.add_argument("--green-log", type=Path, help="green's output (default REPORT_DIR/green.log)")
    run.add_argument("--green-pidfile", type=Path, help="write green's pid here")
    add_rollout_options(run, pause=30.0, settle=5.0)
    run.set_defaults(func=command_run)

    drill = commands.add_parser(
        "drill",
        help="self-contained demo: Redis, blue, HAProxy, load",
        description=command_drill.__doc__,
    )
    drill.add_argument(
        "--fault-error-rate",
        type=float,
        default=0.0,
        help="green's PINGPONG_FAULT_ERROR_RATE: share of /ping answered 500",
    )
    drill.add_argument(
        "--fault-delay",
        type=float,
        default=0.0,
        help="green's PINGPONG_FAULT_DELAY: seconds added to every /ping",
    )
    drill.add_argument(
        "--load-rate",
        type=float,
        default=100.0,
        help="steady load through HAProxy, requests/s (default 100)",
    )
    drill.add_argument(
        "--limit",
        default="100000/minute",
        help="pingpong's rate limit (default 100000/minute: no 429 in a drill)",
    )
    drill.add_argument(
        "--drain-seconds",
        type=float,
        default=2.0,
        help="pingpong's PINGPONG_DRAIN_SECONDS (default 2)",
    )
    drill.add_argument("--storage", help="use this Redis instead of starting a redis-server")
    drill.add_argument("--port", type=int, help="HAProxy's frontend port (default: a free one)")
    drill.add_argument("--workdir", help="configs and logs (default: a new temporary directory)")
    add_rollout_options(drill, pause=5.0, settle=2.0)
    drill.set_defaults(func=command_drill)

    render = commands.add_parser("render-config", help="print haproxy.cfg from the template")
    render.add_argument("--frontend-port", type=int, default=8080)
    render.add_argument("--bind-host", default="127.0.0.1")
    render.add_argument("--blue-port", type=int, default=8081)
    render.add_argument("--green-port", type=int, default=8082)
    render.add_argument(
        "--socket",
        default="/run/haproxy/pingpong.sock",
        help="stats socket: a path, or ipv4@127.0.0.1:PORT",
    )
    render.set_defaults(func=command_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
