"""The admin API (RSGI), served on its own listener, never on the public port.

Every request but ``GET /openapi.json`` needs a known bearer token. Bodies are
bounded and validated by pydantic; every failure is a problem+json 4xx (or a
503 while the storage is down), never a 500, and a rejected request changes
nothing. Operations are counted in ``pingpong_admin_operations_total``, never
in the public request metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qs, unquote

from granian.rsgi import HTTPProtocol, Scope
from pydantic import BaseModel, ValidationError

from pingpong.config import error_message
from pingpong.core.heavy_hitters import MAX_WINDOW
from pingpong.core.logthrottle import LogThrottle
from pingpong.core.overrides import OverrideLimitReached
from pingpong.core.storage.base import StorageError
from pingpong.http.admin_auth import READ, WRITE, Tokens
from pingpong.http.admin_openapi import MAX_TOP, admin_openapi_document
from pingpong.http.problems import Problem
from pingpong.http.rsgi import (
    JSON,
    NO_SERVER,
    REQUEST_ID,
    RequestIds,
    Response,
    peer_address,
    read_body,
    target_length,
)
from pingpong.service import Service
from pingpong.service.control import (
    MAX_PAGE,
    PAGE,
    Actor,
    ControlRequestError,
    InvalidBatch,
    NoSuchOverride,
    UnknownPolicy,
)
from pingpong.service.override_request import MAX_BATCH, OverrideBatch, OverrideRequest

log = logging.getLogger("pingpong.admin")
MAX_BODY = 4096
MAX_BATCH_BODY = MAX_BATCH * MAX_BODY // 4  # a batch's items are small (reasons short)
MAX_TARGET = 2048
PREFIX = "/admin/v1/"


def _json(data: Any) -> Response:
    return 200, [JSON], json.dumps(data, separators=(",", ":")).encode()


def _result(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthorized", 403: "forbidden", 404: "not_found", 503: "unavailable"}.get(
        status, "invalid" if status < 500 else "error"
    )


Handler = Callable[["AdminApp", Scope, HTTPProtocol, dict[str, str], Actor], Awaitable[Response]]


class AdminApp:
    def __init__(self, service: Service, tokens: Tokens) -> None:
        self.service = service
        self.tokens = tokens
        self._openapi = json.dumps(admin_openapi_document(service.version)).encode()
        self._request_ids = RequestIds("admin-")
        self._unauthorized_lines = LogThrottle(lines=1, period=1.0)

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        request_id = self._request_ids.of(scope.headers)
        operation = [""]  # set by _answer as soon as the route is known
        try:
            status, headers, body = await self._answer(scope, proto, request_id, operation)
        except Problem as exc:
            status, headers, body = exc.response()
        except StorageError as exc:
            log.warning("admin request %s: storage error: %s", request_id, exc)
            status, headers, body = Problem(503, f"storage unavailable: {exc}").response()
        except Exception:
            log.exception("admin request %s failed", request_id)
            status, headers, body = Problem(500, "unexpected error; see the server log").response()
        proto.response_bytes(status, [*headers, (REQUEST_ID, request_id), NO_SERVER], body)
        counted = operation[0] or ("unauthorized" if status == 401 else "unknown")
        self.service.counters.admin_operations[(counted, _result(status))] += 1

    async def _answer(
        self, scope: Scope, proto: HTTPProtocol, request_id: str, operation: list[str]
    ) -> Response:
        path, method = scope.path, scope.method
        if target_length(scope) > MAX_TARGET:
            raise Problem(414, f"the path and query are at most {MAX_TARGET} characters")
        if path == "/openapi.json" and method in ("GET", "HEAD"):
            operation[0] = "openapi"
            return 200, [JSON], self._openapi
        token = self.tokens.find(scope.headers.get("authorization"))
        if token is None:
            self._refuse_unauthorized(scope)
        route, params = _route(path)
        methods = ROUTES.get(route, {})
        if not methods:
            raise Problem(404, "no such admin endpoint (see /openapi.json)")
        found = methods.get(method)
        if found is None:
            allow = ", ".join(sorted(methods))
            raise Problem(405, f"use {allow}", ("allow", allow))
        operation[0], handler, needed = found
        if not token.allows(needed):
            raise Problem(403, f"token {token.name!r} has scope {token.scope!r}: "
                          f"{operation[0]} needs {needed!r}")  # fmt: skip
        params |= _query(scope.query_string, QUERIES.get(route, frozenset()))
        return await handler(self, scope, proto, params, Actor(token.name, request_id))

    def _refuse_unauthorized(self, scope: Scope) -> NoReturn:
        """401, and a line naming the source (at most one a second, saying how
        many it held back), never the token presented."""
        if self._unauthorized_lines.allow():
            peer = peer_address(scope.client)
            suppressed = self._unauthorized_lines.take_suppressed()
            log.warning(
                "admin: unauthorized request from %s (%d more held back since the last line)",
                peer, suppressed, extra={"peer": peer, "suppressed": suppressed},
            )  # fmt: skip
        detail = "a known admin token is required: Authorization: Bearer <token>"
        raise Problem(401, detail, ("www-authenticate", 'Bearer realm="pingpong-admin"'))

    # Handlers: ``params`` holds the path's policy and key and the query.

    def _client_key(self, params: dict[str, str]) -> tuple[str, str]:
        policy, key, ip = params["policy"], params.get("key", ""), params.get("ip")
        if ip is not None:
            if key:
                raise Problem(400, "give the key in the path or ?ip=, not both")
            try:
                key = self.service.control.key_for(policy, ip)
            except UnknownPolicy as exc:
                raise Problem(404, str(exc)) from None
            except ControlRequestError as exc:
                raise Problem(400, str(exc)) from None
        if not key:
            raise Problem(400, "name the client: /clients/{policy}/{key} or ?ip=ADDRESS")
        return policy, key

    async def inspect(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                      actor: Actor) -> Response:  # fmt: skip
        policy, key = self._client_key(params)
        return _json(await _control(self.service.control.inspect(policy, key)))

    async def reset(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                    actor: Actor) -> Response:  # fmt: skip
        policy, key = self._client_key(params)
        return _json(await _control(self.service.control.reset(policy, key, actor)))

    async def put_override(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                           actor: Actor) -> Response:  # fmt: skip
        body = await read_body(scope.headers, proto, MAX_BODY)
        request = _validated(OverrideRequest, body)
        change = self.service.control.put_override(
            params["policy"], params.get("key", ""), request, actor
        )
        return _json(await _control(change))

    async def put_overrides(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                            actor: Actor) -> Response:  # fmt: skip
        batch = _validated(OverrideBatch, await read_body(scope.headers, proto, MAX_BATCH_BODY))
        items = [(item.policy, item.key, item) for item in batch.overrides]
        stored = await _control(self.service.control.put_overrides(items, actor))
        return _json({"overrides": stored})

    async def delete_override(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                              actor: Actor) -> Response:  # fmt: skip
        change = self.service.control.delete_override(params["policy"], params["key"], actor)
        return _json(await _control(change))

    async def list_overrides(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                             actor: Actor) -> Response:  # fmt: skip
        limit = _int(params, "limit", PAGE, 1, MAX_PAGE)
        page = self.service.control.list_overrides(params.get("cursor", ""), limit)
        return _json(await _control(page))

    async def top(self, scope: Scope, proto: HTTPProtocol, params: dict[str, str],
                  actor: Actor) -> Response:  # fmt: skip
        window = _int(params, "window", 300, 1, MAX_WINDOW)
        limit = _int(params, "limit", 10, 1, MAX_TOP)
        policy = params.get("policy") or None
        rows = await _control(self.service.control.top(policy, window, limit))
        return _json({"policy": policy, "window": window, "top": rows})


Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], body: bytes) -> Model:
    """The body as ``model``, or a 422 naming every field refused and why."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])), "message": error_message(e)}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
        raise Problem(422, detail, errors=errors[:100]) from None


async def _control(call: Awaitable[Any]) -> Any:
    """The control plane's refusals as 4xx answers."""
    try:
        return await call
    except (UnknownPolicy, NoSuchOverride) as exc:
        raise Problem(404, str(exc)) from None
    except InvalidBatch as exc:
        raise Problem(422, f"{exc} (nothing was stored)") from None
    except OverrideLimitReached as exc:
        raise Problem(409, f"{exc}: delete some first (GET /admin/v1/overrides)") from None
    except ControlRequestError as exc:
        raise Problem(400, str(exc)) from None


def _query(query_string: str, allowed: frozenset[str]) -> dict[str, str]:
    """Only the endpoint's own parameters: none can stand in for a part of
    the path (a proxy's ACL on the path must hold)."""
    try:
        pairs = parse_qs(query_string, strict_parsing=False, max_num_fields=8)
    except ValueError as exc:
        raise Problem(400, f"malformed query: {exc}") from None
    unknown = set(pairs) - allowed
    if unknown:
        raise Problem(400, f"unknown query parameter {sorted(unknown)[0]!r} for this endpoint")
    return {name: values[-1] for name, values in pairs.items()}


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise Problem(400, f"{name} is a whole number from {low} to {high}")
    return int(text)


def _route(path: str) -> tuple[str, dict[str, str]]:
    """``clients/{policy}/{key}``: the key may hold slashes (2001:db8::/64)."""
    if not path.startswith(PREFIX):
        return "", {}
    parts = path[len(PREFIX) :].split("/")
    if parts in (["overrides"], ["top"]):
        return parts[0], {}
    if len(parts) >= 2 and parts[0] in ("clients", "overrides") and parts[1]:
        key = unquote("/".join(parts[2:]))
        if parts[0] == "overrides" and not key:
            return "", {}
        return parts[0] + "/key", {"policy": unquote(parts[1]), "key": key}
    return "", {}


# route -> method -> (operation, handler, the token scope it needs)
ROUTES: dict[str, dict[str, tuple[str, Handler, str]]] = {
    "clients/key": {
        "GET": ("inspect", AdminApp.inspect, READ),
        "DELETE": ("reset", AdminApp.reset, WRITE),
    },
    "overrides/key": {
        "PUT": ("override_put", AdminApp.put_override, WRITE),
        "DELETE": ("override_delete", AdminApp.delete_override, WRITE),
    },
    "overrides": {
        "GET": ("overrides_list", AdminApp.list_overrides, READ),
        "POST": ("overrides_put", AdminApp.put_overrides, WRITE),
    },
    "top": {"GET": ("top", AdminApp.top, READ)},
}
QUERIES = {
    "clients/key": frozenset({"ip"}),
    "overrides": frozenset({"cursor", "limit"}),
    "top": frozenset({"policy", "window", "limit"}),
}
