"""The ``pingpong`` command: ``serve``, ``check-config`` and ``admin``.

Run only through the entry point (``pingpong`` or ``python -m pingpong``), which
holds the lifecycle signals before this module's imports: this module is not
runnable by itself, so there is one way to start the server, never one that a
SIGHUP at start-up kills.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pingpong import __version__
from pingpong.cli_admin import add_admin_parser, run_admin
from pingpong.config import FLAGS, ConfigError, Settings, build_from, load_settings, redacted
from pingpong.http.admin_auth import TOKEN_ENV, TOKENS_FILE_ENV, Tokens, load_tokens
from pingpong.logs import configure as configure_logging
from pingpong.server import signals

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pingpong", description="A throttled ping/pong service.")
    parser.add_argument("--version", action="version", version=f"pingpong {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve HTTP",
        description="Every flag has a PINGPONG_* variable (--trusted-proxy: "
        "PINGPONG_TRUSTED_PROXY, comma-separated). Flags win over variables, "
        "which win over the config file.",
    )
    serve.add_argument("--config", metavar="FILE", help="YAML config file (PINGPONG_CONFIG)")
    for name, flag in FLAGS.items():
        field = Settings.model_fields[name]
        default = field.default if not isinstance(field.default, tuple) else None
        help_text = f"{field.description} (default: {default})"
        if name == "trusted_proxies":
            serve.add_argument(flag, dest=name, action="append", metavar="CIDR", help=help_text)
        else:
            serve.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)

    check = commands.add_parser("check-config", help="validate a config file and show policies")
    check.add_argument("file")
    add_admin_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        signals.release()  # held by the entry point (pingpong.__main__) for serve only
    if args.command == "admin":
        return run_admin(args)
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
        tokens = admin_tokens(settings)
    except ConfigError as exc:
        print(f"pingpong: configuration error\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    from pingpong.server.run import serve

    config_file = args.config or os.environ.get("PINGPONG_CONFIG") or None
    watched = Path(config_file) if config_file else None
    serve(settings, loader, watched, tokens, build_from(os.environ))
    return 0


def admin_tokens(settings: Settings) -> Tokens | None:
    """The admin API's tokens; an admin port without any is a config error."""
    if settings.admin_port is None:
        return None
    try:
        tokens = load_tokens(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not tokens:
        raise ConfigError(
            f"admin_port: the admin API needs a token: set {TOKEN_ENV} or {TOKENS_FILE_ENV}"
        )
    return tokens


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
