"""The aiohttp route for `POST /rpc`: HTTP rules around the JSON-RPC dispatcher.

* Only POST (anything else: 405 with `allow: POST`), with a JSON content type: `application/json` (what
  @open-rpc/client-js and generated clients send), `application/json-rpc` or `application/jsonrequest`; another
  or none is 415.
* A body over GATEWAY_MAX_BODY_BYTES is 413.
  These three are answered with a JSON-RPC error object (id null; data.code METHOD_NOT_SUPPORTED,
  UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE).
* Every JSON-RPC answer, errors included, is 200 with `content-type: application/json`; a request of notifications
  only is 204 with no body.
* The caller comes from `Authorization: Bearer <JWT>`, as on /trpc; a call of a `stripe.*` method
  makes it a payment request in the logs (`payment_request_started` / `_completed` / `_error`).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway import codec
from gateway.errors import ErrorCode
from gateway.http.call_context import CallContextFactory
from gateway.http.limits import read_body
from gateway.http.observe import payment_request_started
from gateway.jsonrpc.dispatch import Dispatcher
from gateway.metrics.recorder import PAYMENT_PROCEDURE_PREFIX, Metrics
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings

__all__ = ["MEDIA_TYPES", "RPC_PATH", "RpcRoute"]

RPC_PATH: Final = "/rpc"
MEDIA_TYPES: Final = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
_JSON: Final = "application/json"


def _http_error(code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = codec.encode(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": code.jsonrpc_code,
                "message": message,
                "data": {"code": code.name, "httpStatus": code.http_status},
            },
        }
    )
    response = web.Response(status=code.http_status, body=body, content_type=_JSON)
    if headers:
        response.headers.update(headers)
    return response


class RpcRoute:
    """Handles every method on `/rpc`."""

    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics, services: Services) -> None:
        self.dispatcher = Dispatcher(registry, settings, metrics)
        self._body_limit = settings.gateway_max_body_bytes
        self._body_timeout = settings.gateway_body_timeout
        self._context = CallContextFactory(settings, services)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _http_error(
                ErrorCode.METHOD_NOT_SUPPORTED, "JSON-RPC requests are POSTed", headers={"allow": "POST"}
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in MEDIA_TYPES:
            response = _http_error(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "JSON-RPC requests are sent as content-type: application/json",
            )
            response.force_close()  # the unread body is still on the socket
            return response
        length = request.content_length
        try:
            if length is not None and length > self._body_limit:
                raise web.HTTPRequestEntityTooLarge(max_size=self._body_limit, actual_size=length)
            body = await read_body(request, self._body_timeout)
        except TimeoutError:  # a client sending its body slower than GATEWAY_BODY_TIMEOUT allows
            response = _http_error(ErrorCode.TIMEOUT, "Request body timeout")
            response.force_close()
            return response
        except web.HTTPRequestEntityTooLarge:
            response = _http_error(ErrorCode.PAYLOAD_TOO_LARGE, "Request body too large")
            response.force_close()
            return response
        except web.RequestPayloadError:
            response = _http_error(ErrorCode.BAD_REQUEST, "Invalid request body")
            response.force_close()
            return response
        parsed = self.dispatcher.parse(body)
        if any(method.startswith(PAYMENT_PROCEDURE_PREFIX) for method in parsed.methods):
            payment_request_started(request)
        ctx = self._context(request)
        answer = await self.dispatcher.answer(parsed, ctx)
        if answer is None:
            return web.Response(status=204)
        return web.Response(status=200, body=answer, content_type=_JSON)
