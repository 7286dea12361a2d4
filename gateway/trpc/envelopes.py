"""Error envelopes (a success one is its transformer's `result`), and the HTTP status a response gets (@trpc/server
v11 rules)."""

from __future__ import annotations

import traceback
from typing import Final

from gateway.errors import TRPCError
from gateway.trpc.transformers import Transformer

__all__ = ["MULTI_STATUS", "error_envelope", "error_shape", "response_status"]

MULTI_STATUS: Final = 207


def error_shape(error: TRPCError, path: str | None, *, expose_stack: bool) -> dict[str, object]:
    """The `error` object: message, JSON-RPC code, and `data` with the tRPC code, HTTP status and path.

    A stack is added only outside production, and only for unexpected exceptions (those carry a cause).
    """
    data: dict[str, object] = {"code": error.code.name, "httpStatus": error.code.http_status}
    if path is not None and not error.whole_request:
        data["path"] = _utf8_safe(path)
    if expose_stack and error.__cause__ is not None:
        data["stack"] = "".join(traceback.format_exception(error.__cause__)).rstrip()
    if error.data:
        data.update(error.data)
    return {"message": _utf8_safe(error.message), "code": error.code.jsonrpc_code, "data": data}


def _utf8_safe(text: str) -> str:
    """Messages can quote what the client sent; bytes aiohttp could not decode become lone surrogates, which no
    JSON encoder can write. Replace them rather than fail the error response itself."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def error_envelope(transformer: Transformer, shape: dict[str, object]) -> bytes:
    return b'{"error":' + transformer.error(shape) + b"}"


def response_status(statuses: list[int]) -> int:
    """One status for the response: the shared one when every call agrees, else 207 Multi-Status."""
    first = statuses[0]
    for status in statuses:
        if status != first:
            return MULTI_STATUS
    return first
