"""A header-read timeout for uvicorn's httptools protocol (the slowloris guard).

uvicorn bounds the idle time between keep-alive requests, but not the time a
client takes to send a request's line and headers: any byte received resets the
keep-alive timer, so a client trickling one header byte every few seconds holds a
connection (and a file descriptor) for ever. :func:`protocol_with_header_timeout`
makes a protocol class that starts a timer when a connection opens and when a new
request's first byte arrives, stops it when the headers are complete, and on
expiry answers ``408 request_timeout`` and closes the connection::

    config = uvicorn.Config(app, http=protocol_with_header_timeout(10.0), ...)

It subclasses uvicorn internals (``HttpToolsProtocol``), hence the upper bound on
uvicorn in pyproject.toml; ``tests/test_testbed_slowloris.py`` checks it against a
real server.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = json.dumps({"error": "request_timeout", "field": None,
                    "detail": "the request headers did not arrive in time"}).encode()
RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n" % len(_BODY)
) + _BODY


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request line and headers must arrive within ``header_timeout_s``."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # a new request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE_408)
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` subclass with ``header_timeout_s = seconds``.

    >>> protocol_with_header_timeout(2.5).header_timeout_s
    2.5
    """
    return type(
        "HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": float(seconds)}
    )
