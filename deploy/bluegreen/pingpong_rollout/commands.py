"""``run`` (next to a running blue and HAProxy) and ``render-config``; what both
rollout commands share (the plan from the arguments, the report at the end)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from pingpong_rollout.analysis import Thresholds
from pingpong_rollout.haproxy_config import render_config
from pingpong_rollout.plan import USAGE, Blue, Plan
from pingpong_rollout.report import Report
from pingpong_rollout.rollout import Rollout
from pingpong_toolkit.haproxy import RuntimeAPI
from pingpong_toolkit.pingpong import Pingpong, pingpong_command
from pingpong_toolkit.processes import Process


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


def launch_green(
    slot: str, command: list[str], host: str, port: int, env: dict[str, str], log: Path
) -> Pingpong:
    """``pingpong serve`` in its own session, so it outlives this tool (a promoted
    green keeps serving) and a Ctrl-C here reaches the tool, not the service."""
    green = Pingpong(
        env={**env, "PINGPONG_SLOT": slot}, name=slot, host=host, port=port, command=command
    )
    return green.launch(log, new_session=True)


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
    process = Process.adopt(args.blue_server, args.blue_pid) if args.blue_pid else None
    blue = Blue(args.blue_url, process)
    api = RuntimeAPI(args.haproxy_socket, args.backend)
    rollout = Rollout(api, plan_from(args), args.blue_server, args.green_server, blue, report)
    report.blue.update({"pid": args.blue_pid, "url": args.blue_url})

    def start() -> Pingpong:
        env = {"PINGPONG_STORAGE": storage, **dict(args.green_env)}
        green = launch_green(
            args.green_server,
            pingpong_command(args.pingpong),
            args.green_host,
            args.green_port,
            env,
            args.green_log or args.report_dir / "green.log",
        )
        if args.green_pidfile and green.process is not None:
            args.green_pidfile.write_text(f"{green.process.pid}\n")
        return green

    return finish(report, args.report_dir, rollout.execute(start))


def command_render(args: argparse.Namespace) -> int:
    print(
        render_config(
            bind=f"{args.bind_host}:{args.frontend_port}",
            blue_addr=f"127.0.0.1:{args.blue_port}",
            green_addr=f"127.0.0.1:{args.green_port}",
            socket_path=args.socket,
            metrics_bind=f"{args.bind_host}:{args.metrics_port}",
        ),
        end="",
    )
    return 0
