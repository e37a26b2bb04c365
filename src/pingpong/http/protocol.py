"""uvicorn's httptools protocol with the limits a public server needs.

uvicorn accepts any header size, answers 400 to a request line of any length
or an unknown method, and waits forever for a client that sends its headers a
byte at a time. This subclass answers 414 (request line over 8 KiB), 431
(headers over 32 KiB), 405 (a method the parser does not know) and 408
(headers not complete within 10 s), then closes the connection. These requests
never reach the app, so they are counted here (route "unparsed") and logged at
debug level only: a flood of garbage must not flood the logs.
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
    _header_bytes = 0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_timer()

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
        self._cancel_header_timer()
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
        self._cancel_header_timer()
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

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._reject(HTTPStatus.REQUEST_TIMEOUT)
