"""``pingpong admin``: the admin API from a shell, with the standard library's
urllib only. Human output by default, ``--json`` for scripts. Exit codes: 0
done, 1 not found (or the service unreachable or failing), 2 usage or auth.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from ipaddress import ip_address
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pingpong.http.admin_auth import TOKEN_ENV
from pingpong.service.override_request import MAX_BATCH, OverrideRequest

URL_ENV = "PINGPONG_ADMIN_URL"
DEFAULT_URL = "http://127.0.0.1:8081"
EXIT_NOT_FOUND, EXIT_USAGE = 1, 2
ITEM = re.compile(r"overrides(?:\[(\d+)\]|\.(\d+)\.)")  # a batch item, as the API names it
CLI_DEFAULTS = {"expires_in": 86400}  # an override typed by hand lasts a day


class Failed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_admin_parser(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help=f"admin API base URL ({URL_ENV}, "
                        f"default {DEFAULT_URL})")  # fmt: skip
    common.add_argument("--token", default=None, help=f"bearer token ({TOKEN_ENV})")
    common.add_argument("--json", action="store_true", help="print the JSON answer")
    common.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    common.add_argument(
        "--plain-http", action="store_true",
        help="allow http:// to a host that is not loopback (the token crosses in clear)",
    )  # fmt: skip
    admin = commands.add_parser("admin", help="operate a running service's admin API")
    ops = admin.add_subparsers(dest="operation", required=True)

    def client(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = ops.add_parser(
            name, parents=[common], help=text, description=text
        )
        parser.add_argument("policy")
        parser.add_argument("key", nargs="?", default="", help="as the policy counts it: "
                            "203.0.113.9, 2001:db8::/64, * (or --ip)")  # fmt: skip
        return parser

    client("inspect", "a client's state: remaining, reset, override").add_argument(
        "--ip", help="the client's address, mapped as the service would"
    )
    client("reset", "give a client its whole quota again, on every replica").add_argument(
        "--ip", help="the client's address, mapped as the service would"
    )
    override = client("override", "set (or --delete) a per-key limit")
    for name, field in OverrideRequest.model_fields.items():  # the API's own fields
        kind = int if field.annotation in (int, int | None) else str
        default = CLI_DEFAULTS.get(name, field.default if not field.is_required() else None)
        shown = f" (default {default})" if default not in (None, "") else ""
        override.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default,
                              help=f"{field.description}{shown}")  # fmt: skip
    override.add_argument("--delete", action="store_true", help="remove the override")
    ops.add_parser("overrides", parents=[common], help="list the overrides")
    load = ops.add_parser(
        "import", parents=[common], help="set many overrides from a JSON Lines file",
        description="Each line of FILE is one override: {\"policy\", \"key\", \"rate\", "
        "\"expires_in\"[, \"burst\", \"reason\"]}. Sent MAX_BATCH lines a request; each "
        "request is stored all or none, and the first refused stops the import.",
    )  # fmt: skip
    load.add_argument("file", type=argparse.FileType("r"), help="JSON Lines ('-': stdin)")
    top = ops.add_parser("top", parents=[common], help="the most-throttled keys")
    top.add_argument("--policy")
    top.add_argument("--window", type=int, default=300, help="seconds (default 300)")
    top.add_argument("--limit", type=int, default=10)


def run_admin(args: argparse.Namespace) -> int:
    try:
        answer = _call(args)
    except Failed as exc:
        print(f"pingpong admin: {exc}", file=sys.stderr)
        return exc.code
    print(json.dumps(answer, indent=2) if args.json else _human(args.operation, _clean(answer)))
    return 0


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\u202e``): what the
    service answers never drives the operator's terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _clean(answer: Any) -> Any:
    if isinstance(answer, str):
        return printable(answer)
    if isinstance(answer, dict):
        return {printable(str(k)): _clean(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [_clean(v) for v in answer]
    return answer


def check_url(base: str, plain_http: bool) -> None:
    """ValueError unless ``base`` is https://, or http:// to a loopback host
    (or ``plain_http``): a bearer token is not sent in clear across a network."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url must be http:// or https://, not {base!r}")
    if parts.scheme == "http" and not plain_http and not _loopback(parts.hostname):
        raise ValueError(
            f"refusing to send the token in clear to {parts.hostname}: use https://, "
            "or --plain-http if the network between is trusted"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as an error: the token stays with its origin."""

    def redirect_request(self, *args: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirects)


def _call(args: argparse.Namespace) -> Any:
    op = args.operation
    if op == "overrides":
        return _every_override(args)
    if op == "import":
        return _import(args)
    if op == "top":
        query = {"window": args.window, "limit": args.limit}
        if args.policy:
            query["policy"] = args.policy
        return _request(args, "GET", "top?" + urlencode(query))
    key = quote(args.key, safe="/:*=")
    ip = getattr(args, "ip", None)
    if bool(ip) == bool(args.key):
        raise Failed(EXIT_USAGE, "name the client: a KEY or --ip ADDRESS (one of them)")
    target = f"{quote(args.policy, safe='')}/{key}" + ("?" + urlencode({"ip": ip}) if ip else "")
    if op == "inspect":
        return _request(args, "GET", "clients/" + target)
    if op == "reset":
        return _request(args, "DELETE", "clients/" + target)
    if args.delete:
        return _request(args, "DELETE", "overrides/" + target)
    if not args.rate:
        raise Failed(EXIT_USAGE, "override needs --rate (or --delete)")
    body = {name: getattr(args, name) for name in OverrideRequest.model_fields}
    return _request(args, "PUT", "overrides/" + target, body)


def _every_override(args: argparse.Namespace) -> dict[str, Any]:
    """Every page of the list (at most MAX_OVERRIDES / 1000 + 1 requests)."""
    rows, query = [], {"limit": "1000"}
    while True:
        page = _request(args, "GET", "overrides?" + urlencode(query))
        rows += page["overrides"]
        if not page.get("next_cursor"):
            return {"overrides": rows}
        query["cursor"] = page["next_cursor"]


def _import(args: argparse.Namespace) -> dict[str, Any]:
    """Batches of MAX_BATCH lines, one after the other: an operator's load,
    never a flood (each batch is audited and announced override by override)."""
    lines: list[tuple[int, Any]] = []
    with args.file as source:
        for number, line in enumerate(source, 1):
            if line.strip():
                try:
                    lines.append((number, json.loads(line)))
                except ValueError as exc:
                    raise Failed(EXIT_USAGE, f"{source.name}:{number}: not JSON: {exc}") from None
    imported = replaced = 0
    for start in range(0, len(lines), MAX_BATCH):
        batch = lines[start : start + MAX_BATCH]
        try:
            answer = _request(args, "POST", "overrides", {"overrides": [o for _, o in batch]})
        except Failed as exc:
            where = _lines_named(str(exc), [number for number, _ in batch])
            message = f"{args.file.name}: {where}; {imported} imported before it"
            raise Failed(exc.code, message) from None
        imported += len(answer["overrides"])
        replaced += sum(1 for o in answer["overrides"] if o["previous"])
    return {"imported": imported, "replaced": replaced}


def _lines_named(detail: str, numbers: list[int]) -> str:
    """The API's ``overrides[i]`` (or ``overrides.i.field``) as the file's line."""
    return ITEM.sub(lambda m: f"line {numbers[int(m[1] or m[2])]}" + ("" if m[1] else ": "), detail)


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    base = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    try:
        check_url(base, args.plain_http)
    except ValueError as exc:
        raise Failed(EXIT_USAGE, str(exc)) from None
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise Failed(EXIT_USAGE, f"no token: --token or {TOKEN_ENV}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        f"{base}/admin/v1/{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with OPENER.open(request, timeout=args.timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            where = printable(exc.headers.get("location", "?"))
            message = f"{exc.code}: refused to follow a redirect to {where}"
            raise Failed(EXIT_NOT_FOUND, message) from None
        try:
            detail = printable(str(json.loads(exc.read()).get("detail", "")))
        except (ValueError, AttributeError):
            detail = ""
        code = EXIT_NOT_FOUND if exc.code == 404 or exc.code >= 500 else EXIT_USAGE
        raise Failed(code, f"{exc.code} {exc.reason}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failed(EXIT_NOT_FOUND, f"cannot reach {base}: {exc}") from None


def _when(epoch: float) -> str:
    left = max(0, round(epoch - time.time()))
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))} (in {left} s)"


def _override(o: dict[str, Any]) -> str:
    burst = f" burst {o['burst']}" if o.get("burst") else ""
    reason = f": {o['reason']}" if o.get("reason") else ""
    return f"{o['rate']}{burst} until {_when(o['expires_at'])} by {o['created_by']}{reason}"


def _human(op: str, a: Any) -> str:
    if op == "inspect":
        lines = [
            f"{a['policy']} {a['key']}: {a['remaining']} of {a['burst']} left "
            f"(limit {a['limit']}, {a['algorithm']}); whole again in {a['reset_seconds']} s"
            + (f"; retry in {a['retry_after_seconds']} s" if a["retry_after_seconds"] else "")
        ]
        if a["override"]:
            lines.append(f"override: {_override(a['override'])}")
        return "\n".join(lines)
    if op == "reset":
        return f"reset {a['policy']} {a['key']}" + ("" if a["had_state"] else " (it had no state)")
    if op == "override":
        if "deleted" in a:
            d = a["deleted"]
            return f"deleted the override of {d['policy']} {d['key']} ({_override(d)})"
        o, old = a["override"], a["previous"]
        return f"override {o['policy']} {o['key']}: {_override(o)}" + (
            f"\nreplaced: {_override(old)}" if old else ""
        )
    if op == "import":
        return f"imported {a['imported']} overrides ({a['replaced']} of them replaced)"
    if op == "overrides":
        rows = a["overrides"]
        lines = [f"{o['policy']} {o['key']}: {_override(o)}" for o in rows]
        return "\n".join(lines) if lines else "no overrides"
    rows = a["top"]
    lines = [f"{'rejected':>10}  policy  key"]
    lines += [f"{r['rejected']:>10}  {r['policy']}  {r['key']}" for r in rows]
    return "\n".join(lines) if rows else f"nothing throttled in the last {a['window']} s"
