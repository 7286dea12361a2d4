"""Per-request observation: a request id for every request, returned in `x-request-id`, and one JSON log line.

Log lines follow the seed's format (`requestId`, `event`, `durationSeconds` with three decimals, `statusCode`,
`path`, `method`, `responseSize`, `success`); requests to `stripe.*` procedures are payment requests and log as
`payment_request_completed` / `payment_request_error`, which the runbook greps for.
"""

from __future__ import annotations

import random
import time
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from loguru import logger

from gateway import codec
from gateway.errors import ErrorCode
from gateway.logs import BufferedLog

__all__ = ["REQUEST_ID", "add_request_id_header", "new_request_id", "request_observer"]

REQUEST_ID: Final = web.RequestKey("request_id", str)
_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_INTERNAL_ERROR_BODY: Final = codec.encode(
    {
        "error": {
            "message": "Internal server error",
            "code": ErrorCode.INTERNAL_SERVER_ERROR.jsonrpc_code,
            "data": {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 500},
        }
    }
)


def new_request_id() -> str:
    """`pay_<epoch ms>_<9 base-36 chars>`, like the seed's `pay_1705312200000_abc123def`."""
    bits = random.getrandbits(47)
    suffix = []
    for _ in range(9):
        bits, digit = divmod(bits, 36)
        suffix.append(_ALPHABET[digit])
    return f"pay_{time.time_ns() // 1_000_000}_{''.join(suffix)}"


def _event_prefix(path: str) -> str:
    return "payment_request" if path.startswith("/trpc/") and "stripe." in path else "http_request"


def request_observer(log: BufferedLog) -> Middleware:
    """The middleware that gives each request an id and logs how it ended (through the batched hot-path log)."""

    def log_outcome(request: web.Request, status: int, size: int | None, started: float) -> None:
        success = 200 <= status < 300 and status != 207
        failed = not success and (status >= 400 or status == 207)
        log.emit(
            "WARNING" if failed else "INFO",
            f"{_event_prefix(request.path)}_{'error' if failed else 'completed'}",
            {
                "requestId": request[REQUEST_ID],
                "durationSeconds": f"{time.perf_counter() - started:.3f}",
                "statusCode": status,
                "path": request.path,
                "method": request.method,
                "responseSize": size or 0,
                "success": success,
            },
        )

    @web.middleware
    async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give the request an id, log how it ended, and turn any escaped exception into a generic tRPC 500."""
        request_id = request[REQUEST_ID] = new_request_id()
        started = time.perf_counter()
        try:
            with logger.contextualize(requestId=request_id):  # every log line of this request names it
                response = await handler(request)
        except web.HTTPException as http_error:
            log_outcome(request, http_error.status, http_error.content_length, started)
            raise
        except ConnectionResetError:
            # The client went away mid-request: nobody gets an answer, and it is not a server error.
            log_outcome(request, ErrorCode.CLIENT_CLOSED_REQUEST.http_status, 0, started)
            raise
        except Exception as exc:
            logger.bind(requestId=request_id, path=request.path).opt(exception=exc).error("request_exception")
            response = web.Response(status=500, body=_INTERNAL_ERROR_BODY, content_type="application/json")
        size = response.body_length if response.prepared else response.content_length
        log_outcome(request, response.status, size, started)
        return response

    return observe_requests


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: every response, streamed ones included, names its request id."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["x-request-id"] = request_id
