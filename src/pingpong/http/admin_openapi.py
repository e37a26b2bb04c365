"""The OpenAPI 3.1 description of the admin listener (a test keeps it true).

The override schemas are generated from the models the API validates with and
answers by (``pingpong.service.override_request``): no bound is restated here.
"""

from __future__ import annotations

from typing import Any

from pingpong.core.heavy_hitters import MAX_WINDOW
from pingpong.http.openapi import PROBLEM_CONTENT, PROBLEM_SCHEMA
from pingpong.service.control import MAX_PAGE, PAGE
from pingpong.service.override_request import (
    MAX_BATCH,
    OverrideBatch,
    OverrideRequest,
    OverrideView,
)

MAX_TOP = 100  # rows a top answer holds at most
_OBJECT = {"type": "object"}
_REF = "#/components/schemas/{model}"
_OVERRIDE = {"$ref": _REF.format(model="Override")}
_CLIENT = {
    "type": "object",
    "required": [
        "policy",
        "key",
        "limit",
        "burst",
        "remaining",
        "reset_seconds",
        "retry_after_seconds",
        "override",
    ],
    "properties": {
        "policy": {"type": "string"},
        "key": {"type": "string"},
        "limit": {"type": "string", "examples": ["100/minute"]},
        "burst": {"type": "integer", "description": "the quota (GCRA burst or window count)"},
        "algorithm": {"type": "string"},
        "window_seconds": {"type": "integer"},
        "remaining": {"type": "integer"},
        "reset_seconds": {"type": "integer"},
        "retry_after_seconds": {"type": "integer", "description": "0 when admitted now"},
        "override": {"anyOf": [_OVERRIDE, {"type": "null"}]},
    },
}
_ERRORS = {
    400: "malformed key, query or body",
    401: "missing or unknown token",
    403: "the token's scope does not allow it",
    404: "no such policy (or override)",
    408: "the body did not arrive in time",
    409: "too many overrides",
    413: "body too large",
    422: "invalid body",
    503: "storage unavailable",
}


def _schema(model: type[OverrideRequest | OverrideView | OverrideBatch]) -> dict[str, Any]:
    return model.model_json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(summary: str, answer: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses = {"200": {"description": "done", "content": _json(answer)}}
    responses |= {str(s): {"description": _ERRORS[s], "content": PROBLEM_CONTENT} for s in errors}
    return {"summary": summary, "responses": responses}


def _parameter(name: str, where: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, **more}


_POLICY = _parameter("policy", "path", {"type": "string"}, required=True, example="default")
_KEY = _parameter(
    "key",
    "path",
    {"type": "string"},
    required=True,
    description="the client key as the policy counts it: 203.0.113.9, 2001:db8::/64, *",
)
_CLIENT_REF = {"$ref": "#/components/schemas/Client"}


def _client_paths() -> dict[str, Any]:
    inspect = "The client's state in the storage (nothing consumed)."
    by_ip = "Inspect the client at address ?ip= (mapped as the resolver does)."
    ip = _parameter("ip", "query", {"type": "string"}, required=True, example="203.0.113.9")
    return {
        "/admin/v1/clients/{policy}/{key}": {
            "parameters": [_POLICY, _KEY],
            "get": _operation(inspect, _CLIENT_REF, 400, 401, 404, 503),
            "delete": _operation(
                "Reset: the whole quota again, on every replica within 1 s.",
                _OBJECT,
                400,
                401,
                403,
                404,
                503,
            ),
        },
        "/admin/v1/clients/{policy}": {
            "parameters": [_POLICY, ip],
            "get": _operation(by_ip, _CLIENT_REF, 400, 401, 404, 503),
        },
    }


def _override_paths() -> dict[str, Any]:
    stored = {
        "type": "object",
        "properties": {"override": _OVERRIDE, "previous": {"anyOf": [_OVERRIDE, {"type": "null"}]}},
    }
    put = _operation(
        "A per-key limit replacing the policy's until it expires.",
        stored,
        400,
        401,
        403,
        404,
        408,
        409,
        413,
        422,
        503,
    )
    put["requestBody"] = {"required": True, "content": _json(_schema(OverrideRequest))}
    listed = {
        "type": "object",
        "properties": {
            "overrides": {"type": "array", "items": _OVERRIDE},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    page = _operation("The unexpired overrides, a page at a time, in key order.", listed,
                      400, 401, 503)  # fmt: skip
    page["parameters"] = [
        _parameter("cursor", "query", {"type": "string"},
                   description="the next_cursor of the previous page"),
        _parameter("limit", "query",
                   {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE}),
    ]  # fmt: skip
    return {
        "/admin/v1/overrides/{policy}/{key}": {
            "parameters": [_POLICY, _KEY],
            "put": put,
            "delete": _operation("Remove an override.", _OBJECT, 400, 401, 403, 404, 503),
        },
        "/admin/v1/overrides": {"get": page, "post": _batch(stored)},
    }


def _batch(stored: dict[str, Any]) -> dict[str, Any]:
    summary = (
        f"Up to {MAX_BATCH} overrides at once, all or none: an item refused (422, "
        "naming overrides[i]) or a batch past the bound (409) stores nothing. Each "
        "override is audited and announced as a PUT of its own; the answer lists "
        "them in the request's order."
    )
    answer = {"type": "object", "properties": {"overrides": {"type": "array", "items": stored}}}
    post = _operation(summary, answer, 401, 403, 408, 409, 413, 422, 503)
    post["requestBody"] = {"required": True, "content": _json(_schema(OverrideBatch))}
    return post


def _top_path() -> dict[str, Any]:
    top = _operation(
        "The most-throttled keys over the window, across replicas.", _OBJECT, 400, 401, 404, 503
    )
    top["parameters"] = [
        _parameter("policy", "query", {"type": "string"}),
        _parameter("window", "query", {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW}),
        _parameter("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_TOP}),
    ]
    return {"/admin/v1/top": {"get": top}}


def admin_openapi_document(version: str) -> dict[str, Any]:
    this = _operation("This document (no token needed).", _OBJECT)
    this["security"] = []
    schemas = {"Problem": PROBLEM_SCHEMA, "Client": _CLIENT, "Override": _schema(OverrideView)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "pingpong admin", "version": version},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            **_client_paths(),
            **_override_paths(),
            **_top_path(),
            "/openapi.json": {"get": this},
        },
    }
