"""The OpenAPI 3 description of the HTTP surface (a test keeps it true)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {
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


def _get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    operation = {"summary": summary, "responses": responses}
    return {"get": operation, "head": operation}


def openapi_document(version: str) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "pingpong", "version": version},
        "paths": {
            "/ping": _get(
                "Answers pong, within the client's rate limit.",
                {
                    "200": {"description": "pong", "headers": _RATELIMIT_HEADERS, "content": _TEXT},
                    "429": {
                        "description": "Over the limit; retry after Retry-After seconds.",
                        "headers": {
                            "Retry-After": {"schema": {"type": "integer", "minimum": 1}},
                            **_RATELIMIT_HEADERS,
                        },
                        "content": problem,
                    },
                    "503": {"description": "Storage down in deny mode.", "content": problem},
                },
            ),
            "/healthz": _get("Liveness.", {"200": {"description": "alive", "content": _TEXT}}),
            "/readyz": _get(
                "Readiness: 503 while draining after SIGTERM.",
                {
                    "200": {"description": "ready", "content": _TEXT},
                    "503": {"description": "draining", "content": _TEXT},
                },
            ),
            "/version": _get(
                "Version, git commit and deployment slot.",
                {
                    "200": {
                        "description": "build information",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["version", "commit", "slot"],
                                    "properties": {
                                        "version": {"type": "string"},
                                        "commit": {"type": "string"},
                                        "slot": {"type": "string"},
                                    },
                                }
                            }
                        },
                    }
                },
            ),
            "/openapi.json": _get(
                "This document.",
                {"200": {"description": "OpenAPI 3", "content": {"application/json": {}}}},
            ),
            "/metrics": _get(
                "Prometheus metrics.",
                {"200": {"description": "text exposition format", "content": _TEXT}},
            ),
        },
        "components": {"schemas": {"Problem": _PROBLEM}},
    }
