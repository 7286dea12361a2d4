"""The HTTP connection: aiohttp's, plus a deadline for a request's line and headers (GATEWAY_HEADER_TIMEOUT).

aiohttp bounds the wait *between* requests (`keepalive_timeout`) and, with the routes' `read_body`, the body; it
has no bound on a request head that trickles in (slowloris: a byte every few seconds keeps a connection, and a
file descriptor, forever). `HeadTimeoutHandler` starts a timer when a chunk of a head arrives without completing
it, and stops it when the head completes. A head that arrives whole, as almost every head does (one read), never
starts a timer, so the hot path only pays a few attribute checks per read. When the timer fires the client gets a
408 and the connection is closed. Its writes go through a `CoalescingTransport` (`gateway.http.coalesce`): the
responses of one pass of the event loop leave together at its end.

`GatewayRunner` is `web.AppRunner` serving connections with that handler, each request entering through the front
door (`gateway.http.front_door`); `gateway serve` and the tests' server use it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import codec
from gateway.errors import ErrorCode
from gateway.http.coalesce import CoalescingTransport, WriteCoalescer
from gateway.http.front_door import DIRECT_ROUTE, front_door
from gateway.http.hygiene import SECURITY_HEADERS

__all__ = ["GatewayRunner", "HeadTimeoutHandler"]

_TIMEOUT_BODY: Final = codec.encode(
    {
        "error": {
            "message": "Request header timeout",
            "code": ErrorCode.TIMEOUT.jsonrpc_code,
            "data": {"code": ErrorCode.TIMEOUT.name, "httpStatus": ErrorCode.TIMEOUT.http_status},
        }
    }
)
HEAD_TIMEOUT_RESPONSE: Final = (
    "HTTP/1.1 408 Request Timeout\r\n"
    "content-type: application/json\r\n"
    f"content-length: {len(_TIMEOUT_BODY)}\r\n"
    "connection: close\r\n"
    "cache-control: no-store\r\n"
    + "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items())
    + "\r\n"
).encode("latin-1") + _TIMEOUT_BODY
"""Written straight to the socket: no request exists yet for aiohttp to answer."""


class HeadTimeoutHandler(RequestHandler):
    """aiohttp's connection handler with a deadline on each request head, writing through `coalescer`."""

    __slots__ = ("_body", "_coalescer", "_coalescing", "_head_timeout", "_head_timer")

    def __init__(
        self, manager: web.Server, *, head_timeout: float, coalescer: WriteCoalescer, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._coalescer = coalescer
        self._coalescing: CoalescingTransport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        """The body of the last request whose head arrived: while it is incomplete, data is body, not a head."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a TCP connection's
        self._coalescing = self._coalescer.wrap(transport)
        super().connection_made(self._coalescing)

    def eof_received(self) -> None:
        # The client half-closed. aiohttp answers None, so asyncio closes the transport next; an answer held for the
        # end of the pass goes out now, so that the close waits for it to be sent.
        if self._coalescing is not None:
            self._coalescing.send_held()
        super().eof_received()

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            # A head completed. If part of the next one came with it, its timer starts with its next chunk.
            self._body = self._messages[-1][1] if self._messages else None
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        elif (
            data
            and self._head_timer is None
            and (self._body is None or self._body.is_eof())
            and not (self._force_close or self._close or self._upgraded)
        ):
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._force_close or self._close or self.transport is None:
            return
        if self._request_in_progress or self._messages:
            # A response is on its way on this connection: no 408 in the middle of it; close once it is sent.
            self.close()
            return
        self.transport.write(HEAD_TIMEOUT_RESPONSE)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's own answers (a malformed request line, ...), with the security headers every response has."""
        response = super().handle_error(request, status, exc, message)
        response.headers.extend(SECURITY_HEADERS)
        return response


class _GatewayServer(web.Server):
    """aiohttp's connection factory, making `HeadTimeoutHandler`s that share one `WriteCoalescer`."""

    head_timeout: float = 10.0
    coalescer: WriteCoalescer

    def __call__(self) -> RequestHandler:
        return HeadTimeoutHandler(
            self, loop=self._loop, head_timeout=self.head_timeout, coalescer=self.coalescer, **self._kwargs
        )


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose connections have a head deadline of `head_timeout` seconds."""

    __slots__ = ("_head_timeout",)

    def __init__(self, app: web.Application, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds a plain `web.Server` (with every option in place); serve it with our handler.
        server.__class__ = _GatewayServer
        assert isinstance(server, _GatewayServer)
        server.head_timeout = self._head_timeout
        server.coalescer = WriteCoalescer(asyncio.get_running_loop())
        direct_route = self.app.get(DIRECT_ROUTE)
        if direct_route is not None:
            server.request_handler = front_door(server.request_handler, *direct_route)
        return server
