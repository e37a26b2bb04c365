"""Problem responses (RFC 9457), with the one table of status titles both
listeners answer with."""

from __future__ import annotations

import json

PROBLEM_TYPE = "application/problem+json"
PROBLEM = ("content-type", PROBLEM_TYPE)
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    414: "URI Too Long",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_body(status: int, detail: str, **extra: object) -> bytes:
    """The problem document of ``status``, its title from TITLES."""
    body = {"type": "about:blank", "title": TITLES[status], "status": status, "detail": detail}
    return json.dumps({**body, **extra}, separators=(",", ":")).encode()


class Problem(Exception):
    """A problem answer a handler raises (a 4xx changes nothing)."""

    def __init__(
        self, status: int, detail: str, *headers: tuple[str, str], **extra: object
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers, extra

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        body = problem_body(self.status, self.detail, **self.extra)
        return self.status, [PROBLEM, *self.headers], body
