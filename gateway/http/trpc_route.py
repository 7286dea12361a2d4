"""The aiohttp route for `/trpc/*`: adapts an aiohttp request to the framework-free resolver and back."""

from __future__ import annotations

from typing import Final

from aiohttp import HttpVersion11, web
from loguru import logger

from gateway.errors import ErrorCode, TRPCError
from gateway.http.call_context import CallContextFactory
from gateway.http.hygiene import add_before_prepare
from gateway.http.limits import read_body
from gateway.http.observe import REQUEST_ID_HEADER
from gateway.services import Services
from gateway.trpc.resolver import TrpcRequest, TrpcResolver

__all__ = ["TRPC_PREFIX", "TrpcRoute"]

TRPC_PREFIX: Final = "/trpc"


class TrpcRoute:
    """Handles every method on `/trpc` and below."""

    def __init__(self, resolver: TrpcResolver, services: Services) -> None:
        self._resolver = resolver
        self._body_limit = resolver.settings.gateway_max_body_bytes
        self._body_timeout = resolver.settings.gateway_body_timeout
        self._context = CallContextFactory(resolver.settings, services)

    async def _read_body(self, request: web.Request) -> tuple[bytes | None, TRPCError | None]:
        length = request.content_length
        if length is not None and length > self._body_limit:
            return None, TRPCError(ErrorCode.PAYLOAD_TOO_LARGE)
        if not request.body_exists:
            return None, None
        try:
            return await read_body(request, self._body_timeout), None
        except web.HTTPRequestEntityTooLarge:
            return None, TRPCError(ErrorCode.PAYLOAD_TOO_LARGE)
        except TimeoutError:  # a client sending its body slower than GATEWAY_BODY_TIMEOUT allows
            return None, TRPCError(ErrorCode.TIMEOUT, "Request body timeout")
        except web.RequestPayloadError:  # a body that ends before its Content-Length or chunked framing says
            return None, TRPCError(ErrorCode.BAD_REQUEST, "Invalid request body")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "HEAD":
            # @trpc/server answers HEAD with an empty 204 (used to warm up serverless functions).
            return web.Response(status=204)
        raw_path = request.raw_path
        if not raw_path.startswith("/"):  # absolute-form target (`GET http://host/trpc/x`), as proxies send
            raw_path = request.rel_url.raw_path_qs
        query_at = raw_path.find("?")
        tail = raw_path[len(TRPC_PREFIX) : query_at if query_at >= 0 else None]
        if tail and tail[0] != "/":
            raise web.HTTPNotFound()
        body, body_error = (None, None) if request.method == "GET" else await self._read_body(request)
        ctx = self._context(request)
        result = await self._resolver.resolve(
            TrpcRequest(request.method, tail, request.query, request.headers, body, body_error), ctx
        )
        if result.stream is None:
            response = web.Response(status=result.status, body=result.body, headers=result.headers)
            if body_error is not None:
                response.force_close()  # the unread body is still on the socket
            return response
        if request.version < HttpVersion11:
            # No chunked encoding before HTTP/1.1: send the same lines as one body once every call is done.
            body = b"".join([chunk async for chunk in result.stream])
            return web.Response(status=result.status, body=body, headers=result.headers)
        stream = web.StreamResponse(status=result.status, headers=result.headers)
        stream.headers[REQUEST_ID_HEADER] = ctx.request_id
        stream.enable_chunked_encoding()
        add_before_prepare(request, stream)
        await stream.prepare(request)
        try:
            async for chunk in result.stream:
                await stream.write(chunk)
        except ConnectionResetError:
            # The client went away. Calls already started finish (a payment step is never cut in half, as with
            # @trpc/server, whose procedures run on unless they watch their abort signal); their answers are dropped.
            await result.stream.aclose()
            logger.info("stream_client_gone")
            return stream
        except Exception as exc:
            # Headers are out: all we can do is end the stream, and the client fails the calls still pending.
            logger.opt(exception=exc).error("stream_exception")
        await stream.write_eof()
        return stream
