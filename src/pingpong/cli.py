"""The ``pingpong`` command: ``serve`` and ``check-config``."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

from pingpong import __version__
from pingpong.config import ConfigError, Settings, load_settings, redacted
from pingpong.core.algorithms import Algorithm
from pingpong.core.storage import FailureMode
from pingpong.logs import configure as configure_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pingpong", description="A throttled ping/pong service.")
    parser.add_argument("--version", action="version", version=f"pingpong {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve HTTP",
        description="Flags win over PINGPONG_* variables, which win over the config file.",
    )
    serve.add_argument("--host", help="listen address (PINGPONG_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PINGPONG_PORT, default 8080)")
    serve.add_argument("--config", metavar="FILE", help="YAML config file (PINGPONG_CONFIG)")
    serve.add_argument("--storage", metavar="URL", help="memory:// (default) or redis://...")
    serve.add_argument("--limit", metavar="RATE", help="default rate, e.g. 100/minute or 5/10s")
    serve.add_argument("--burst", type=int, metavar="N", help="GCRA burst (default: the rate's N)")
    serve.add_argument("--algorithm", choices=[a.value for a in Algorithm])
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (needs Redis)")
    serve.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        metavar="CIDR",
        help="proxy whose X-Forwarded-For is believed (repeatable)",
    )
    serve.add_argument("--on-storage-error", choices=[m.value for m in FailureMode])
    serve.add_argument("--metrics-port", type=int, metavar="P", help="also serve /metrics on P")
    serve.add_argument("--drain-seconds", type=float, metavar="S", help="not-ready time on SIGTERM")
    serve.add_argument("--log-format", choices=["json", "text"], help="default: json")
    serve.add_argument(
        "--access-log", type=float, metavar="SHARE", help="log this share of requests (0-1)"
    )

    check = commands.add_parser("check-config", help="validate a config file and show policies")
    check.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("text")  # until the settings say otherwise
    try:
        if args.command == "check-config":
            settings = load_settings(args.file, env={}, flags={})
            print(describe(settings, args.file))
            return 0
        flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
        loader = functools.partial(load_settings, args.config, None, flags)
        settings = loader()
        configure_logging(settings.log_format)
    except ConfigError as exc:
        print(f"pingpong: configuration error\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    from pingpong.server import serve

    serve(settings, loader)
    return 0


def describe(settings: Settings, source: str) -> str:
    lines = [
        f"{source}: OK",
        f"storage: {redacted(settings.storage)} (on error: {settings.on_storage_error.value}, "
        f"timeout {settings.storage_timeout}s)",
        "policies:",
    ]
    for p in settings.effective_policies():
        methods = ",".join(sorted(p.methods))
        lines.append(
            f"  {p.name}: {p.limit.rate} burst {p.limit.burst} {p.limit.algorithm.value} "
            f"key={p.key} match={methods} {p.path}{' (shadow)' if p.shadow else ''}"
        )
    for t in settings.tiers():
        lines.append(
            f"  tier {t.name}: {t.limit.rate} burst {t.limit.burst} {t.limit.algorithm.value} "
            f"({len(t.digests)} keys, header {settings.api_keys.header})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
