"""The OpenAPI 3 description of the admin listener (a test keeps it true)."""

from __future__ import annotations

from typing import Any

from pingpong.http.openapi import _PROBLEM

_OBJECT = {"type": "object"}
_NULLABLE_OBJECT = {"type": "object", "nullable": True}
_OVERRIDE = {
    "type": "object",
    "required": ["policy", "key", "rate", "burst", "expires_at", "reason", "created_by"],
    "properties": {
        "policy": {"type": "string"},
        "key": {"type": "string"},
        "rate": {"type": "string", "example": "1000/minute"},
        "burst": {"type": "integer", "nullable": True},
        "expires_at": {"type": "number", "description": "Unix seconds"},
        "reason": {"type": "string"},
        "created_by": {"type": "string", "description": "the admin token's name"},
        "created_at": {"type": "number"},
    },
}
_CLIENT = {
    "type": "object",
    "required": ["policy", "key", "limit", "burst", "remaining", "reset_seconds",
                 "retry_after_seconds", "override"],
    "properties": {
        "policy": {"type": "string"},
        "key": {"type": "string"},
        "limit": {"type": "string", "example": "100/minute"},
        "burst": {"type": "integer", "description": "the quota (GCRA burst or window count)"},
        "algorithm": {"type": "string"},
        "window_seconds": {"type": "integer"},
        "remaining": {"type": "integer"},
        "reset_seconds": {"type": "integer"},
        "retry_after_seconds": {"type": "integer", "description": "0 when admitted now"},
        "override": {"allOf": [{"$ref": "#/components/schemas/Override"}], "nullable": True},
    },
}  # fmt: skip
_PUT_BODY = {
    "type": "object",
    "required": ["rate", "expires_in"],
    "additionalProperties": False,
    "properties": {
        "rate": {"type": "string", "example": "1000/minute"},
        "burst": {"type": "integer", "minimum": 1},
        "expires_in": {"type": "integer", "minimum": 1, "maximum": 366 * 86400},
        "reason": {"type": "string", "maxLength": 500},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": _json(schema)}


def _errors(*statuses: int) -> dict[str, Any]:
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    text = {400: "malformed key, query or body", 401: "missing or unknown token",
            404: "no such policy (or override)", 409: "too many overrides",
            413: "body too large", 422: "invalid body", 503: "storage unavailable"}  # fmt: skip
    return {str(s): {"description": text[s], "content": content} for s in statuses}


_POLICY = {"name": "policy", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY = {
    "name": "key", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "the client key as the policy counts it: 203.0.113.9, 2001:db8::/64, *",
}  # fmt: skip


def admin_openapi_document(version: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Override"}
    client = "/admin/v1/clients/{policy}/{key}"
    override = "/admin/v1/overrides/{policy}/{key}"
    return {
        "openapi": "3.0.3",
        "info": {"title": "pingpong admin", "version": version},
        "components": {
            "schemas": {"Problem": _PROBLEM, "Override": _OVERRIDE, "Client": _CLIENT},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            client: {
                "parameters": [_POLICY, _KEY],
                "get": {
                    "summary": "The client's state in the storage (nothing consumed).",
                    "responses": {
                        "200": _ok("state", {"$ref": "#/components/schemas/Client"}),
                        **_errors(400, 401, 404, 503),
                    },
                },
                "delete": {
                    "summary": "Reset: the whole quota again, on every replica within 1 s.",
                    "responses": {"200": _ok("reset", _OBJECT), **_errors(400, 401, 404, 503)},
                },
            },
            "/admin/v1/clients/{policy}": {
                "parameters": [
                    _POLICY,
                    {"name": "ip", "in": "query", "required": True, "schema": {"type": "string"}},
                ],
                "get": {
                    "summary": "Inspect the client at address ?ip= (mapped as the resolver does).",
                    "responses": {
                        "200": _ok("state", {"$ref": "#/components/schemas/Client"}),
                        **_errors(400, 401, 404, 503),
                    },
                },
            },
            override: {
                "parameters": [_POLICY, _KEY],
                "put": {
                    "summary": "A per-key limit replacing the policy's until it expires.",
                    "requestBody": {"required": True, "content": _json(_PUT_BODY)},
                    "responses": {
                        "200": _ok(
                            "stored",
                            {
                                "type": "object",
                                "properties": {"override": ref, "previous": _NULLABLE_OBJECT},
                            },
                        ),
                        **_errors(400, 401, 404, 409, 413, 422, 503),
                    },
                },
                "delete": {
                    "summary": "Remove an override.",
                    "responses": {"200": _ok("removed", _OBJECT), **_errors(400, 401, 404, 503)},
                },
            },
            "/admin/v1/overrides": {
                "get": {
                    "summary": "The unexpired overrides, a page at a time, in key order.",
                    "parameters": [
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "the next_cursor of the previous page",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 1000,
                                "default": 100,
                            },
                        },
                    ],
                    "responses": {
                        "200": _ok(
                            "overrides",
                            {
                                "type": "object",
                                "properties": {
                                    "overrides": {"type": "array", "items": ref},
                                    "next_cursor": {"type": "string", "nullable": True},
                                },
                            },
                        ),
                        **_errors(400, 401, 503),
                    },
                },
            },
            "/admin/v1/top": {
                "get": {
                    "summary": "The most-throttled keys over the window, across replicas.",
                    "parameters": [
                        {"name": "policy", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "window",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 3600},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                    ],
                    "responses": {"200": _ok("top", _OBJECT), **_errors(400, 401, 404, 503)},
                },
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document (no token needed).",
                    "security": [],
                    "responses": {"200": _ok("OpenAPI 3", _OBJECT)},
                },
            },
        },
    }
