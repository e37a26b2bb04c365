"""``pingpong-rollout``: the arguments of run, drill and render-config."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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


# (flags, add_argument's keywords): every option is one row, added by ``add_options``.
Option = tuple[str, dict[str, Any]]


def add_options(parser: argparse._ActionsContainer, options: list[Option]) -> None:
    for flag, settings in options:
        parser.add_argument(flag, **settings)


def plan_options(pause: float, settle: float) -> list[Option]:
    return [
        ("--steps", {"type": steps, "default": [10, 25, 50, 100],
                     "help": "green's traffic share per step, percent (default 10,25,50,100)"}),
        ("--pause", {"type": float, "default": pause,
                     "help": f"seconds each step is observed (default {pause:g})"}),
        ("--sample-interval", {"type": float, "default": 1.0,
                               "help": "seconds between two reads of /metrics (default 1)"}),
        ("--settle", {"type": float, "default": settle,
                      "help": f"seconds observed before the first step and after the "
                              f"decision (default {settle:g})"}),
        ("--max-error-ratio", {"type": float, "default": 0.001,
                               "help": "highest 5xx/requests ratio of green per step, its own "
                                       "sheds included; 429 is a success (default 0.001, the "
                                       "99.9%% SLO)"}),
        ("--max-p99", {"type": float, "default": 0.25,
                       "help": "highest p99 latency of green's /ping per step, seconds "
                               "(default 0.25)"}),
        ("--min-requests", {"type": int, "default": 20,
                            "help": "fewer green requests in a step is 'no data': a failure "
                                    "(default 20)"}),
        ("--no-fail-fast", {"action": "store_true",
                            "help": "always observe a step for its whole pause before deciding"}),
        ("--ready-timeout", {"type": float, "default": 30.0,
                             "help": "seconds green has to become ready (default 30)"}),
        ("--drain-timeout", {"type": float, "default": 60.0,
                             "help": "seconds the old side has to drain and exit (default 60)"}),
    ]  # fmt: skip


COMMON_OPTIONS: list[Option] = [
    ("--green-env", {"type": key_value, "action": "append", "default": [], "metavar": "KEY=VALUE",
                     "help": "environment of green, e.g. PINGPONG_CONFIG=/etc/pingpong.yaml, "
                             "PINGPONG_COMMIT=abc123 (repeatable)"}),
    ("--pingpong", {"help": "the pingpong command (default: this venv's)"}),
    ("--report-dir", {"type": Path, "default": Path("bluegreen-report"),
                      "help": "where report.json and report.png go (default ./bluegreen-report)"}),
]  # fmt: skip

RUN_OPTIONS: list[Option] = [
    ("--haproxy-socket", {"required": True,
                          "help": "runtime API: a unix socket path or HOST:PORT"}),
    ("--backend", {"default": "pingpong", "help": "HAProxy backend (default pingpong)"}),
    ("--blue-server", {"default": "blue", "help": "blue's server name (default blue)"}),
    ("--green-server", {"default": "green",
                        "help": "the free slot's server name, also green's PINGPONG_SLOT "
                                "(default green; after a promotion, swap the two names)"}),
    ("--blue-url", {"help": "blue's base URL (readiness, request-rate chart)"}),
    ("--blue-pid", {"type": int,
                    "help": "blue's pid: SIGTERM after the drain (without it blue is left at 0)"}),
    ("--storage", {"help": "blue's Redis URL, shared by green (or PINGPONG_STORAGE)"}),
    ("--green-host", {"default": "127.0.0.1", "help": "green's listen address"}),
    ("--green-port", {"type": int, "help": "green's port (default: a free one)"}),
    ("--green-log", {"type": Path, "help": "green's output (default REPORT_DIR/green.log)"}),
    ("--green-pidfile", {"type": Path, "help": "write green's pid here"}),
]  # fmt: skip

DRILL_OPTIONS: list[Option] = [
    ("--fault-error-rate", {"type": float, "default": 0.0,
                            "help": "green's PINGPONG_FAULT_ERROR_RATE: share of /ping "
                                    "answered 500"}),
    ("--fault-delay", {"type": float, "default": 0.0,
                       "help": "green's PINGPONG_FAULT_DELAY: seconds added to every /ping"}),
    ("--load-rate", {"type": float, "default": 100.0,
                     "help": "steady load through HAProxy, requests/s (default 100)"}),
    ("--limit", {"default": "100000/minute",
                 "help": "pingpong's rate limit (default 100000/minute: no 429 in a drill)"}),
    ("--drain-seconds", {"type": float, "default": 2.0,
                         "help": "pingpong's PINGPONG_DRAIN_SECONDS (default 2)"}),
    ("--storage", {"help": "use this Redis instead of starting a redis-server"}),
    ("--port", {"type": int, "help": "HAProxy's frontend port (default: a free one)"}),
    ("--workdir", {"help": "configs and logs (default: a new temporary directory)"}),
]  # fmt: skip

RENDER_OPTIONS: list[Option] = [
    ("--frontend-port", {"type": int, "default": 8080}),
    ("--bind-host", {"default": "127.0.0.1"}),
    ("--blue-port", {"type": int, "default": 8081}),
    ("--green-port", {"type": int, "default": 8082}),
    ("--metrics-port", {"type": int, "default": 8404,
                        "help": "HAProxy's own Prometheus metrics, /metrics (default 8404)"}),
    ("--socket", {"default": "/run/haproxy/pingpong.sock",
                  "help": "stats socket: a path, or ipv4@127.0.0.1:PORT"}),
]  # fmt: skip


def add_rollout_options(parser: argparse.ArgumentParser, pause: float, settle: float) -> None:
    add_options(parser.add_argument_group("steps and thresholds"), plan_options(pause, settle))
    add_options(parser, COMMON_OPTIONS)


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
    add_options(run, RUN_OPTIONS)
    add_rollout_options(run, pause=30.0, settle=5.0)
    run.set_defaults(func=command_run)

    drill = commands.add_parser(
        "drill",
        help="self-contained demo: Redis, blue, HAProxy, load",
        description=command_drill.__doc__,
    )
    add_options(drill, DRILL_OPTIONS)
    add_rollout_options(drill, pause=5.0, settle=2.0)
    drill.set_defaults(func=command_drill)

    render = commands.add_parser("render-config", help="print haproxy.cfg from the template")
    add_options(render, RENDER_OPTIONS)
    render.set_defaults(func=command_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
