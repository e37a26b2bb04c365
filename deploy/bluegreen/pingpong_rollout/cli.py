"""``pingpong-rollout``: the arguments of run, drill and render-config."""

from __future__ import annotations

import argparse
from pathlib import Path

from pingpong_rollout.commands import command_render, command_run
from pingpong_rollout.drill import command_drill


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
        prog="pingpong-rollout",
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
