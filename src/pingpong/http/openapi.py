"""The OpenAPI 3 description of the HTTP surface (a test keeps it true)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "policy": {"type": "string"},
        "retry_after": {"type": "integer", "minimum": 1},
    },
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_RATELIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'Quota policies, e.g. `"default";q=100;w=60`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'Remaining quota and seconds to reset, e.g. `"default";r=99;t=1`.',
        "schema": {"type": "string"},
    },
}
_VERSION = {
    "type": "object",
    "required": ["version", "commit", "slot"],
    "properties": {name: {"type": "string"} for name in ("version", "commit", "slot")},
}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": _TEXT}


def _get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    operation = {"summary": summary, "responses": responses}
    return {"get": operation, "head": operation}


_PING = {
    "200": {"description": "pong", "headers": _RATELIMIT_HEADERS, "content": _TEXT},
    "429": {
        "description": "Over the limit; retry after Retry-After seconds.",
        "headers": {
            "Retry-After": {"schema": {"type": "integer", "minimum": 1}},
            **_RATELIMIT_HEADERS,
        },
        "content": PROBLEM_CONTENT,
    },
    "503": {"description": "Storage down in deny mode.", "content": PROBLEM_CONTENT},
}
PATHS: dict[str, dict[str, Any]] = {
    "/ping": _get("Answers pong, within the client's rate limit.", _PING),
    "/healthz": _get("Liveness.", {"200": _text("alive")}),
    "/readyz": _get(
        "Readiness: 503 while draining after SIGTERM.",
        {"200": _text("ready"), "503": _text("draining")},
    ),
    "/version": _get(
        "Version, git commit and deployment slot.",
        {
            "200": {
                "description": "build information",
                "content": {"application/json": {"schema": _VERSION}},
            }
        },
    ),
    "/openapi.json": _get(
        "This document.", {"200": {"description": "OpenAPI 3", "content": {"application/json": {}}}}
    ),
    "/metrics": _get("Prometheus metrics.", {"200": _text("text exposition format")}),
}


def openapi_document(version: str, paths: Iterable[str] = PATHS) -> dict[str, Any]:
    """The document of the routes one listener serves."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "pingpong", "version": version},
        "paths": {path: PATHS[path] for path in paths},
        "components": {"schemas": {"Problem": PROBLEM_SCHEMA}},
    }
