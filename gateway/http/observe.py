"""Per-request observation: a request id for every request, returned in `x-request-id`, and one JSON log line.

Log lines follow the seed's format (`requestId`, `event`, `durationSeconds` with three decimals, `statusCode`,
`path`, `method`, `responseSize`, `success`); requests to `stripe.*` procedures are payment requests and log
`payment_request_started` when they arrive, then `payment_request_completed` or `payment_request_error` (which the
runbook greps for). Every request is also counted, by route and status, in the gateway's metrics.

The observer is also where the HTTP layer's rules meet every request, once: the client's address and scheme
(trusted proxies), the response headers (security, HSTS, CORS; `gateway.http.hygiene`), CORS preflights, and,
except on the metrics routes (on-call must see an overloaded replica), the cap on requests in handlers
(503 `SERVICE_UNAVAILABLE`, `retry-after: 1`) and the handler deadline (408 `TIMEOUT`; `gateway.http.limits`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler
from loguru import logger

from gateway import codec
from gateway.errors import ErrorCode
from gateway.http.client_address import ClientResolver
from gateway.http.cors import Cors
from gateway.http.hygiene import PREPARED_RESPONSE, RESPONSE_HEADERS, RouteHeaders
from gateway.http.limits import InFlight, body_arrived
from gateway.logs import CURRENT_REQUEST_ID, BufferedLog, now_iso
from gateway.metrics.recorder import Metrics
from gateway.settings import Settings

__all__ = [
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "REQUEST_LOG",
    "UNLIMITED_ROUTES",
    "AccessLine",
    "StartLine",
    "is_payment_request",
    "new_request_id",
    "payment_request_started",
    "request_observer",
]

REQUEST_ID: Final = web.RequestKey("request_id", str)
REQUEST_ID_HEADER: Final = "x-request-id"
_PAYMENT: Final = web.RequestKey("payment_request", bool)
"""Set by a route that finds out from the body that the request is a payment request (`/rpc`)."""
REQUEST_LOG: Final = web.AppKey("request_log", BufferedLog)
"""The application's access log (the one its observer writes to)."""
_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TRIPLES: Final = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
"""Every 3-character base-36 string: a request id's suffix is three lookups, not nine divisions (1.9 to 0.9 µs)."""
_TRIPLE_COUNT: Final = len(_TRIPLES)
_TRIPLE_PAIRS: Final = _TRIPLE_COUNT * _TRIPLE_COUNT
UNLIMITED_ROUTES: Final = frozenset({"metrics", "health"})
"""Routes outside the concurrency cap and the handler deadline: cheap, and what on-call reads during an overload."""
CORS_ROUTES: Final = frozenset({"trpc", "rpc"})
NO_STORE_ROUTES: Final = frozenset({"trpc", "rpc", "webhooks", "other"})
"""The metrics routes send `cache-control: no-store` themselves."""


_EVENTS: Final = {
    (False, False): "http_request_completed",
    (False, True): "http_request_error",
    (True, False): "payment_request_completed",
    (True, True): "payment_request_error",
}
"""The access line's event by (payment request, failed)."""


def _error_body(route: str, code: ErrorCode, message: str) -> bytes:
    """An error the observer answers itself, shaped as the route's clients expect (JSON-RPC on /rpc)."""
    error = {
        "message": message,
        "code": code.jsonrpc_code,
        "data": {"code": code.name, "httpStatus": code.http_status},
    }
    if route == "rpc":
        return codec.encode({"jsonrpc": "2.0", "id": None, "error": error})
    return codec.encode({"error": error})


_INTERNAL_ERROR_BODY: Final = _error_body("trpc", ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error")


def new_request_id() -> str:
    """`pay_<epoch ms>_<9 base-36 chars>`, like the seed's `pay_1705312200000_abc123def`."""
    now_ms = time.time_ns() // 1_000_000
    if _id_prefix[0] != now_ms:  # several requests a millisecond under load share the formatted part
        _id_prefix[0] = now_ms
        _id_prefix[1] = f"pay_{now_ms}_"
    bits = _random_bits(47)  # 36**9 is 1.0e14, 2**47 1.4e14: every suffix can occur
    return (
        f"{_id_prefix[1]}{_TRIPLES[bits % _TRIPLE_COUNT]}{_TRIPLES[bits // _TRIPLE_COUNT % _TRIPLE_COUNT]}"
        f"{_TRIPLES[bits // _TRIPLE_PAIRS % _TRIPLE_COUNT]}"
    )


_id_prefix: list[object] = [-1, ""]
_random_bits: Final = random.getrandbits
_DURATION_TEXTS: Final = tuple(f"{ms / 1000:.3f}" for ms in range(1000))
"""`durationSeconds` (three decimals) of the requests under a second, nearly all, formatted once: formatting a
float costs 2k instructions, a third of them on every request."""


class StartLine(msgspec.Struct):
    """A payment request arrived (the seed's fields that are known by then)."""

    timestamp: str
    level: str
    event: str
    requestId: str  # noqa: N815 - the seed's field names
    path: str
    method: str


class AccessLine(msgspec.Struct):
    """The seed's log line for one request (field order as in the seed)."""

    timestamp: str
    level: str
    event: str
    requestId: str  # noqa: N815 - the seed's field names
    durationSeconds: str  # noqa: N815
    statusCode: int  # noqa: N815
    path: str
    method: str
    responseSize: int  # noqa: N815
    success: bool


def is_payment_request(path: str) -> bool:
    """A tRPC request that calls a `stripe.*` procedure (alone or in a batch)."""
    return path.startswith("/trpc/") and "stripe." in path


def payment_request_started(request: web.Request) -> None:
    """For a route whose payment calls are named in the body (`/rpc`): log `payment_request_started` now, and end
    the request with `payment_request_completed` / `_error`, as a `/trpc/stripe.*` request does."""
    log = request.app.get(REQUEST_LOG)
    if log is None or REQUEST_ID not in request or request.get(_PAYMENT) or is_payment_request(request.path):
        return  # not observed, or already a payment request
    request[_PAYMENT] = True
    log.emit(
        "INFO",
        StartLine(
            now_iso(), "INFO", "payment_request_started", request[REQUEST_ID], request.path, request.method
        ),
    )


def request_observer(
    log: BufferedLog, metrics: Metrics, settings: Settings
) -> Callable[[str, Handler], Handler]:
    """`observed(route, handler)` wraps a route handler so that each request gets an id, log lines saying how it
    ended (and, for a payment request, that it began), and is counted under `route` in the metrics; and so that
    the HTTP rules of the module docstring apply to it.

    A wrapper applied once per route, not an aiohttp middleware: any middleware makes aiohttp run two extra layers
    on every request (measured +3-6 % req/s without). The app registers every route through it, with a catch-all
    404 route last, so no request goes without an id or a log line.
    """
    clients = ClientResolver(settings.gateway_trusted_proxies)
    cors = Cors(settings)
    in_flight = InFlight(settings.gateway_max_concurrent_requests, settings.gateway_handler_timeout)
    body_timeout, max_body = settings.gateway_body_timeout, settings.gateway_max_body_bytes

    def log_outcome(
        route: str,
        request: web.Request,
        request_id: str,
        status: int,
        size: int | None,
        started: float,
        payment: bool,
    ) -> None:
        """`payment`: the path names a payment procedure (`is_payment_request`), as the observer found out."""
        seconds = time.perf_counter() - started
        metrics.http_request(route, status, seconds)
        success = 200 <= status < 300 and status != 207
        failed = not success and (status >= 400 or status == 207)
        if failed:
            level = "WARNING"
        elif route in ("metrics", "health"):
            level = "DEBUG"  # probes and scrapes every few seconds would drown the lines that matter
        else:
            level = "INFO"
        # Only /rpc learns from the body that a request is a payment request (`payment_request_started`).
        is_payment = payment or (route == "rpc" and request.get(_PAYMENT, False))
        event = _EVENTS[is_payment, failed]
        line = AccessLine(
            now_iso(),
            level,
            event,
            request_id,
            _DURATION_TEXTS[ms] if 0 <= (ms := int(seconds * 1000 + 0.5)) < 1000 else f"{seconds:.3f}",
            status,
            request.path,
            request.method,
            size or 0,
            success,
        )
        log.emit(level, line)

    def observed(route: str, handler: Handler) -> Handler:
        headers = RouteHeaders(
            no_store=route in NO_STORE_ROUTES, cors=cors if cors.enabled and route in CORS_ROUTES else None
        )
        preflights = cors if cors.enabled and route in CORS_ROUTES else None
        limited = route not in UNLIMITED_ROUTES
        overloaded_body = _error_body(route, ErrorCode.SERVICE_UNAVAILABLE, "Too many requests in progress")
        timeout_body = _error_body(route, ErrorCode.TIMEOUT, "Request took too long")

        async def observe_request(request: web.Request) -> web.StreamResponse:
            """Give the request an id, log how it ended, turn any escaped exception into a generic tRPC 500."""
            request_id = request[REQUEST_ID] = new_request_id()
            started = time.perf_counter()
            https = clients.resolve(request) == "https"
            response_headers = request[RESPONSE_HEADERS] = headers.choose(request, https)
            payment = is_payment_request(request.path)
            if payment:
                log.emit(
                    "INFO",
                    StartLine(
                        now_iso(), "INFO", "payment_request_started", request_id, request.path, request.method
                    ),
                )
            preflight = preflights.preflight(request) if preflights and request.method == "OPTIONS" else None
            task = asyncio.current_task() if limited else None
            response: web.StreamResponse
            if preflight is not None:
                # The preflight carries its own CORS headers.
                response_headers = request[RESPONSE_HEADERS] = headers.plain(https)
                response = preflight
            elif (
                task is not None
                and request.method == "POST"
                and not request.content.is_eof()  # nearly every body came with its head: no coroutine then
                and not await body_arrived(request, body_timeout, max_body)
            ):
                response = web.Response(status=408, body=timeout_body, content_type="application/json")
                response.force_close()  # the rest of the body may still be on its way: no next request after it
            elif task is not None and not in_flight.admit(task):
                response = web.Response(
                    status=503,
                    body=overloaded_body,
                    content_type="application/json",
                    headers={"retry-after": "1"},
                )
            else:
                token = CURRENT_REQUEST_ID.set(request_id)  # every log line of this request names it
                timed_out = False
                try:
                    response = await handler(request)
                except web.HTTPException as http_error:
                    http_error.headers.extend(response_headers)
                    http_error.headers[REQUEST_ID_HEADER] = request_id
                    log_outcome(
                        route,
                        request,
                        request_id,
                        http_error.status,
                        http_error.content_length,
                        started,
                        payment,
                    )
                    raise
                except (ConnectionResetError, asyncio.CancelledError):
                    timed_out = task is not None and in_flight.release(task)
                    task = None
                    if not timed_out:
                        # The client went away mid-request, or the server stopped waiting for it (shutdown): nobody
                        # gets an answer, and a payment request that was logged as started still gets its end line.
                        log_outcome(
                            route,
                            request,
                            request_id,
                            ErrorCode.CLIENT_CLOSED_REQUEST.http_status,
                            0,
                            started,
                            payment,
                        )
                        raise
                except Exception as exc:
                    logger.bind(path=request.path).opt(exception=exc).error("request_exception")
                    response = web.Response(
                        status=500, body=_INTERNAL_ERROR_BODY, content_type="application/json"
                    )
                finally:
                    CURRENT_REQUEST_ID.reset(token)
                    if task is not None:
                        timed_out = in_flight.release(task)
                if timed_out:
                    logger.bind(path=request.path, seconds=in_flight.timeout).warning("request_timeout")
                    started_response: web.StreamResponse | None = request.get(PREPARED_RESPONSE)
                    if started_response is not None:
                        # Its head is out: no 408 can follow. End the connection, so the client sees the response
                        # cut short rather than complete.
                        request.protocol.force_close()
                        log_outcome(
                            route, request, request_id, ErrorCode.TIMEOUT.http_status, 0, started, payment
                        )
                        return started_response
                    response = web.Response(status=408, body=timeout_body, content_type="application/json")
            size: int | None
            if response.prepared:  # streamed: the route added the headers before sending the head
                size = response.body_length
            else:
                response.headers.extend(response_headers)
                response.headers[REQUEST_ID_HEADER] = request_id
                size = response.content_length
            log_outcome(route, request, request_id, response.status, size, started, payment)
            return response

        return observe_request

    return observed
