"""tRPC error codes and the one exception type procedures and the wire layer raise.

The code table is @trpc/server v11's (see shared/reference/trpc-wire.md, section 4.2): each code has a JSON-RPC
integer, which the clients require to be a number, and an HTTP status, which picks the response status.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["ErrorCode", "TRPCError"]


class ErrorCode(enum.Enum):
    """A tRPC error code: its name goes on the wire as `data.code`."""

    # name = (JSON-RPC error.code, HTTP status)
    PARSE_ERROR = (-32700, 400)
    BAD_REQUEST = (-32600, 400)
    INTERNAL_SERVER_ERROR = (-32603, 500)
    NOT_IMPLEMENTED = (-32603, 501)
    BAD_GATEWAY = (-32603, 502)
    SERVICE_UNAVAILABLE = (-32603, 503)
    GATEWAY_TIMEOUT = (-32603, 504)
    UNAUTHORIZED = (-32001, 401)
    PAYMENT_REQUIRED = (-32002, 402)
    FORBIDDEN = (-32003, 403)
    NOT_FOUND = (-32004, 404)
    METHOD_NOT_SUPPORTED = (-32005, 405)
    TIMEOUT = (-32008, 408)
    CONFLICT = (-32009, 409)
    PRECONDITION_FAILED = (-32012, 412)
    PAYLOAD_TOO_LARGE = (-32013, 413)
    UNSUPPORTED_MEDIA_TYPE = (-32015, 415)
    UNPROCESSABLE_CONTENT = (-32022, 422)
    PRECONDITION_REQUIRED = (-32028, 428)
    TOO_MANY_REQUESTS = (-32029, 429)
    CLIENT_CLOSED_REQUEST = (-32099, 499)

    @property
    def jsonrpc_code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


class TRPCError(Exception):
    """An error a client is meant to see: its code, a message safe to show, and optional extra `data` fields.

    `headers` are added to the HTTP response (e.g. `allow` on a 405, `retry-after` on a 429).
    `whole_request` marks errors about the request as a whole (bad path encoding, mixed types, ...): they are sent
    as one object without `data.path`, even for a batch, as @trpc/server does.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        cause: BaseException | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        whole_request: bool = False,
    ) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message or code.name
        self.__cause__ = cause
        self.data = data
        self.headers = headers
        self.whole_request = whole_request
