"""``drill``: everything on loopback, started here: Redis, blue, HAProxy, steady load."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pingpong_rollout.commands import finish, launch_green, plan_from, report_config
from pingpong_rollout.haproxy_config import render_config
from pingpong_rollout.load import SteadyLoad
from pingpong_rollout.plan import NOT_STARTED, Blue, StartFailed
from pingpong_rollout.report import Report
from pingpong_rollout.rollout import Rollout
from pingpong_toolkit.commands import MissingTool
from pingpong_toolkit.haproxy import HAProxy, HAProxyError
from pingpong_toolkit.pingpong import NotServing, Pingpong, pingpong_command
from pingpong_toolkit.ports import free_port
from pingpong_toolkit.redis import RedisServer


class Stack:
    """What a drill starts and must stop (children only), last started first stopped."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis: RedisServer | None = None
        self.haproxy: HAProxy | None = None
        self.pingpongs: list[Pingpong] = []

    def start_redis(self) -> str:
        try:
            self.redis = RedisServer(workdir=self.workdir / "redis").start()
        except (MissingTool, RuntimeError) as exc:
            raise StartFailed(str(exc)) from None
        return self.redis.url

    def start_blue(self, command: list[str], env: dict[str, str]) -> Pingpong:
        blue = Pingpong(env={**env, "PINGPONG_SLOT": "blue"}, name="blue", command=command)
        self.pingpongs.append(blue)
        try:
            blue.launch(self.workdir / "blue.log", new_session=True).wait_until("/readyz", 20)
        except NotServing:
            raise StartFailed(f"blue did not start (see {self.workdir / 'blue.log'})") from None
        return blue

    def start_haproxy(self, frontend: int, blue_port: int, green_port: int) -> HAProxy:
        sock = str(self.workdir / "haproxy.sock")
        config = render_config(
            bind=f"127.0.0.1:{frontend}",
            blue_addr=f"127.0.0.1:{blue_port}",
            green_addr=f"127.0.0.1:{green_port}",
            socket_path=sock,
            metrics_bind=f"127.0.0.1:{free_port()}",
        )
        try:
            self.haproxy = HAProxy.start(config, self.workdir, sock, "pingpong")
            self.haproxy.wait_up("blue")
        except (MissingTool, AssertionError, HAProxyError) as exc:
            raise StartFailed(f"HAProxy never saw blue up: {exc}") from None
        return self.haproxy

    def close(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for pingpong in reversed(self.pingpongs):
            pingpong.stop(15)
        if self.redis is not None:
            self.redis.stop()


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
    green_port, frontend = free_port(), args.port or free_port()
    try:
        shared["PINGPONG_STORAGE"] = args.storage or stack.start_redis()
        blue = stack.start_blue(command, shared)
        haproxy = stack.start_haproxy(frontend, blue.port, green_port)
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
    rollout = Rollout(haproxy.api, plan, "blue", "green", Blue(blue.url, blue.process), report)
    report.blue.update({"pid": blue.process.pid if blue.process else None, "url": blue.url})
    report.config.update(
        {"load_rate": args.load_rate, "limit": args.limit,
         "frontend": f"http://127.0.0.1:{frontend}"}
    )  # fmt: skip

    def start() -> Pingpong:
        env = {**shared, **faults, **dict(args.green_env)}
        green = launch_green("green", command, "127.0.0.1", green_port, env, workdir / "green.log")
        stack.pingpongs.append(green)
        return green

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
