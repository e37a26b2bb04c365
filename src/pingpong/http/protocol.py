"""uvicorn's httptools protocol with the limits a public server needs.

uvicorn accepts any header size, answers 400 to a request line of any length
or an unknown method, and waits forever for a client that sends its headers a
byte at a time. This subclass answers 414 (request line over 8 KiB), 431
(headers over 32 KiB), 405 (a method the parser does not know) and 408
(headers not complete within 10 s, checked once a second), then closes the
connection. These requests never reach the app, so they are counted here
(route "unparsed") and logged at debug level only: a flood of garbage must
not flood the logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from http import HTTPStatus

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pingpong.metrics import STATS

MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
HEADER_TIMEOUT = 10.0
METHOD_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} ")

log = logging.getLogger("pingpong.http")


class Reject(Exception):
    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    # When the current request's headers started arriving (None: not reading
    # headers). One sweep a second per server checks every connection, which
    # costs far less than a timer armed and cancelled for every request.
    _headers_since: float | None = None
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        _HeaderSweep.watch(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._headers_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise Reject(HTTPStatus.REQUEST_URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_since = None
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            if not isinstance(context, Reject):
                raise
            self._reject(context.status)
        except httptools.HttpParserInvalidMethodError:
            # A method-shaped token the parser does not know (BREW) is 405;
            # bytes that are no method at all (TLS to a plain port) are 400.
            known_shape = METHOD_TOKEN.match(data) is not None
            self._reject(HTTPStatus.METHOD_NOT_ALLOWED if known_shape else HTTPStatus.BAD_REQUEST)
        except httptools.HttpParserError:
            self._reject(HTTPStatus.BAD_REQUEST)
        except httptools.HttpParserUpgrade:
            pass  # no upgrades offered: the request was answered as plain HTTP

    def _reject(self, status: HTTPStatus) -> None:
        self._headers_since = None
        STATS.requests[("OTHER", "unparsed", status.value)] += 1
        log.debug("rejected an unparsable request from %s: %d", self.client, status.value)
        body = f"{status.phrase}\n".encode()
        extra = b"allow: GET, HEAD\r\n" if status is HTTPStatus.METHOD_NOT_ALLOWED else b""
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\n%sconnection: close\r\n\r\n%s"
            % (status.value, status.phrase.encode(), len(body), extra, body)
        )
        self.transport.close()

    def headers_overdue(self, now: float) -> bool:
        since = self._headers_since
        return since is not None and now - since > HEADER_TIMEOUT


class _HeaderSweep:
    """Once a second, answer 408 on connections stuck in their headers."""

    _connections: set[GuardedHttpToolsProtocol] | None = None

    @classmethod
    def watch(cls, protocol: GuardedHttpToolsProtocol) -> None:
        if cls._connections is None:
            cls._connections = protocol.connections  # type: ignore[assignment]
            protocol.loop.call_later(1.0, cls._sweep, protocol.loop)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for protocol in list(cls._connections or ()):
            if protocol.headers_overdue(now) and not protocol.transport.is_closing():
                protocol._reject(HTTPStatus.REQUEST_TIMEOUT)
        loop.call_later(1.0, cls._sweep, loop)
