"""A time limit on request headers, which uvicorn does not have.

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``) and refuses
headers over a size (``h11_max_incomplete_event_size``), but a client that opens a
connection and sends its request line a byte at a time, or not at all, holds the connection
as long as it likes: a few hundred such clients hold as many sockets.
:func:`header_timeout_protocol` is uvicorn's h11 protocol with a timer: armed when the
connection opens (and when the first bytes of a kept-alive connection's next request
arrive), stopped once the request's headers are in. When it fires first, the client gets
``408 Request Timeout`` if it had sent part of a request (nothing if it had sent nothing)
and the connection is closed. The body is not timed: a body over the limit is refused by
size (:class:`~odqa.server.limits.BodyLimit`).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a client has, from connecting, to send its request line and headers."""


def _timed_out_response(seconds: float) -> bytes:
    text = f"request headers not complete within {seconds:g} s\n".encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        "x-content-type-options: nosniff\r\n"
        f"content-length: {len(text)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + text


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's :class:`H11Protocol`, closing connections whose request headers take
    longer than :attr:`header_timeout` seconds. Use :func:`header_timeout_protocol`."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None
    _partial: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on a kept-alive connection has begun
        self._partial = True
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._partial = False  # what the client sends from here on is a new request
        super().on_response_complete()
        waiting = self._header_timer is None and self.conn.their_state is h11.IDLE
        if waiting and self.conn.trailing_data[0]:  # a pipelined request, in part
            self._partial = True
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.logger.info(
            "%s: request headers not complete within %g s; connection closed",
            "{}:{}".format(*self.client) if self.client else "a client",
            self.header_timeout,
        )
        if self._partial:
            self.transport.write(_timed_out_response(self.header_timeout))
        self.transport.close()


def header_timeout_protocol(seconds: float = DEFAULT_HEADER_TIMEOUT) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (``uvicorn.Config(app, http=...)``) for a limit
    of ``seconds`` on request headers."""
    if not 0 < seconds < float("inf"):
        raise ValueError(f"the header timeout takes a positive number of seconds, got {seconds}")
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
