"""JSON-RPC 2.0 requests against the procedure registry: parsing, calling, encoding (no HTTP here).

The contract is gateway.schema.openrpc's: methods are tRPC paths, params are by name (a struct input's fields are
the `params` object; any other input is `{"input": value}`; a procedure without input takes no params), results are
the outputs as plain JSON (datetimes as ISO 8601 strings, as /trpc without a transformer writes them), and errors
carry the tRPC code's JSON-RPC integer in `error.code` and `{code, httpStatus, …}` in `error.data` (validation
failures are BAD_REQUEST, -32600, with `data.issues` and their field paths, as on /trpc).

Errors of the JSON-RPC layer itself (before any procedure runs):

* body not JSON: -32700 "Parse error", id null (data.code PARSE_ERROR);
* a request that is not an object, `jsonrpc` other than "2.0", a `method` that is not a string, an `id` that is not a
  string, number or null, an empty batch, a batch over the size limit: -32600 "Invalid Request" (data.code
  BAD_REQUEST), with the request's id when it had a valid one, else null;
* unknown method (and any `rpc.*` but `rpc.discover`): -32601 "Method not found" (data.code NOT_FOUND, 404);
* `params` present but not an object (by-position arrays, scalars, null): -32602 "Invalid params" (data.code
  BAD_REQUEST, 400). The one exception: a procedure without input also accepts `[]` (what clients send for "no
  params"), and ignores the members of an object, as /trpc ignores the input of such a procedure.

Notifications (no `id` member) run to the end before the answer goes out and get no answer of their own. Calls of a
batch run concurrently; answers are in request order. Every procedure call (notifications included) is counted in the
metrics with transport `jsonrpc`; `rpc.discover` is not a procedure and is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from loguru import logger

from gateway import codec
from gateway.auth.guard import admit
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.metrics.recorder import OK, Metrics
from gateway.registry import Procedure, Registry
from gateway.schema.openrpc import is_params_struct, openrpc_document
from gateway.settings import Settings
from gateway.trpc import tasks
from gateway.trpc.envelopes import error_shape
from gateway.trpc.inputs import InputReader
from gateway.trpc.transformers import JSON

__all__ = ["DISCOVER", "TRANSPORT", "Dispatcher", "Parsed", "RpcCall"]

TRANSPORT: Final = "jsonrpc"
"""The `transport` label of the calls made over /rpc in the metrics."""
DISCOVER: Final = "rpc.discover"
UNKNOWN_PROCEDURE: Final = "unknown"
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_body_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw] | dict[str, msgspec.Raw])
_object_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_NONE_TYPE: Final = type(None)


@dataclass(frozen=True, slots=True)
class RpcCall:
    """One well-formed request object. `id` is msgspec.UNSET for a notification."""

    id: object
    method: str
    params: bytes | None


_Item = RpcCall | bytes
"""A parsed request object, or the (already encoded) answer to an invalid one."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request body, parsed: its items, or one answer for the body as a whole (`whole`)."""

    items: list[_Item]
    is_batch: bool
    whole: bytes | None = None

    @property
    def methods(self) -> list[str]:
        return [item.method for item in self.items if isinstance(item, RpcCall)]


class _InvalidParams(Exception):
    pass


def _error_answer(id_: object, shape: dict[str, object]) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + _encode_id(id_) + b',"error":' + codec.encode(shape) + b"}"


def _protocol_error(
    id_: object, code: int, message: str, error_code: ErrorCode, detail: str | None = None
) -> bytes:
    data: dict[str, object] = {"code": error_code.name, "httpStatus": error_code.http_status}
    if detail is not None:
        data["detail"] = detail
    return _error_answer(id_, {"code": code, "message": message, "data": data})


def _encode_id(id_: object) -> bytes:
    try:
        return codec.encode(None if id_ is msgspec.UNSET else id_)
    except (msgspec.EncodeError, UnicodeEncodeError):  # a string id with lone surrogates
        return b"null"


def _valid_id(value: object) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def parse(body: bytes, max_batch: int) -> Parsed:
    """Parse a request body into calls; malformed parts become their error answers."""
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    try:
        top = _body_decoder.decode(body)
    except msgspec.ValidationError:
        # Neither an object nor an array, or not JSON at all (`1 2`: the type is refused before the rest is read).
        try:
            codec.decode_any(body)
        except (msgspec.DecodeError, RecursionError) as error:
            return Parsed(
                [],
                False,
                _protocol_error(None, PARSE_ERROR, "Parse error", ErrorCode.PARSE_ERROR, str(error)),
            )
        return Parsed(
            [], False, _protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST)
        )
    except (msgspec.DecodeError, RecursionError) as error:
        return Parsed(
            [], False, _protocol_error(None, PARSE_ERROR, "Parse error", ErrorCode.PARSE_ERROR, str(error))
        )
    if isinstance(top, dict):
        try:
            return Parsed([_request_object(top)], False)
        except msgspec.DecodeError:  # a member JSON cannot hold as a value (`"id": 1e400`)
            return Parsed(
                [], False, _protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST)
            )
    if not top:
        detail = "An empty batch is not a request"
        return Parsed(
            [], True, _protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST, detail)
        )
    if len(top) > max_batch:
        detail = f"Batch call exceeds maximum size ({max_batch})"
        return Parsed(
            [], True, _protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST, detail)
        )
    items: list[_Item] = []
    for raw in top:
        try:
            items.append(_request_object(_object_decoder.decode(raw)))
        except msgspec.DecodeError:  # not an object, or a member out of range
            items.append(_protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST))
    return Parsed(items, True)


def _request_object(obj: dict[str, msgspec.Raw]) -> _Item:
    id_: object = msgspec.UNSET
    if "id" in obj:
        id_ = codec.decode_any(obj["id"])
        if not _valid_id(id_):
            detail = '"id" must be a string, a number or null'
            return _protocol_error(None, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST, detail)
    version = codec.decode_any(obj["jsonrpc"]) if "jsonrpc" in obj else None
    if version != "2.0":
        detail = '"jsonrpc" must be "2.0"'
        return _protocol_error(id_, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST, detail)
    method = codec.decode_any(obj["method"]) if "method" in obj else None
    if not isinstance(method, str):
        detail = '"method" must be a string'
        return _protocol_error(id_, INVALID_REQUEST, "Invalid Request", ErrorCode.BAD_REQUEST, detail)
    params = obj.get("params")
    return RpcCall(id_, method, bytes(params).strip() if params is not None else None)


class Dispatcher:
    """Answers JSON-RPC request bodies with one registry and one set of settings."""

    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.expose_stack = not settings.is_production
        self._by_name = {
            proc.path: proc.input is not None and is_params_struct(proc.input.type) for proc in registry
        }
        self._document: bytes | None = None

    def parse(self, body: bytes) -> Parsed:
        return parse(body, self.settings.gateway_trpc_max_batch_size)

    def discovery_document(self) -> bytes:
        """openrpc.json for this gateway (its public URL), encoded once."""
        if self._document is None:
            self._document = codec.encode(openrpc_document(self.registry, self.settings.public_url))
        return self._document

    async def answer(self, parsed: Parsed, ctx: CallContext) -> bytes | None:
        """The response body, or None when nothing is to be answered (notifications only)."""
        if parsed.whole is not None:
            return parsed.whole
        if parsed.is_batch:
            self.metrics.batch(TRANSPORT, len(parsed.items))
        runs: list[Coroutine[Any, Any, bytes | None]] = [
            self._call(item, ctx) for item in parsed.items if isinstance(item, RpcCall)
        ]
        outcomes = iter(await tasks.in_order(runs) if runs else [])
        answers = [item if isinstance(item, bytes) else next(outcomes) for item in parsed.items]
        sent = [answer for answer in answers if answer is not None]
        if not sent:
            return None
        if not parsed.is_batch:
            return sent[0]
        return b"[" + b",".join(sent) + b"]"

    # -- one call ------------------------------------------------------------------------------------------------

    async def _call(self, call: RpcCall, ctx: CallContext) -> bytes | None:
        answer = await self._outcome(call, ctx)
        return None if call.id is msgspec.UNSET else answer

    async def _outcome(self, call: RpcCall, ctx: CallContext) -> bytes:
        if call.method == DISCOVER:
            return self._result(call.id, self.discovery_document())
        started = time.perf_counter()
        proc = None if call.method.startswith("rpc.") else self.registry.get(call.method)
        if proc is None:
            self.metrics.procedure_call(
                UNKNOWN_PROCEDURE,
                UNKNOWN_PROCEDURE,
                TRANSPORT,
                ErrorCode.NOT_FOUND.name,
                time.perf_counter() - started,
            )
            detail = f'No procedure found on path "{call.method}"'
            return _protocol_error(call.id, METHOD_NOT_FOUND, "Method not found", ErrorCode.NOT_FOUND, detail)
        error: TRPCError | None = None
        output: Any = None
        try:
            admit(proc, ctx)
            value = self._input(proc, call.params)
            output = proc.invoke(ctx, value)
            if proc.is_async:
                output = await output
        except _InvalidParams as exc:
            self._count(proc, ErrorCode.BAD_REQUEST.name, started)
            return _protocol_error(call.id, INVALID_PARAMS, "Invalid params", ErrorCode.BAD_REQUEST, str(exc))
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            error = self._unexpected(exc, proc.path)
        except TRPCError as exc:
            error = exc
        except Exception as exc:
            error = self._unexpected(exc, proc.path)
        if error is None:
            try:
                data = self._encode_output(proc, output)
            except Exception as exc:
                logger.bind(procedure=proc.path).opt(exception=exc).error("procedure_output_unencodable")
                error = TRPCError(ErrorCode.INTERNAL_SERVER_ERROR, "Output validation failed", cause=exc)
            else:
                self._count(proc, OK, started)
                return self._result(call.id, data)
        self._count(proc, error.code.name, started)
        return _error_answer(call.id, error_shape(error, proc.path, expose_stack=self.expose_stack))

    def _input(self, proc: Procedure, params: bytes | None) -> object:
        if proc.input is None:
            if params is not None and not params.startswith(b"{") and b"".join(params.split()) != b"[]":
                raise _InvalidParams(f"{proc.path} takes no params: omit them, or send {{}}")
            return None
        raw: bytes | None
        if params is None:
            raw = None
        elif not params.startswith(b"{"):
            raise _InvalidParams("params must be an object (by name); by-position params are not supported")
        elif self._by_name[proc.path]:
            raw = params
        else:
            member = _object_decoder.decode(params).get("input")
            raw = bytes(member) if member is not None else None
        return InputReader(raw, is_batch=False, mode="json").read(0, proc.input)

    @staticmethod
    def _encode_output(proc: Procedure, output: object) -> bytes:
        if output is msgspec.UNSET or (output is None and proc.output_type is _NONE_TYPE):
            return b"null"
        return JSON.data(output, has_datetime=proc.output_has_datetime)

    @staticmethod
    def _result(id_: object, data: bytes) -> bytes:
        return b'{"jsonrpc":"2.0","id":' + _encode_id(id_) + b',"result":' + data + b"}"

    def _count(self, proc: Procedure, code: str, started: float) -> None:
        self.metrics.procedure_call(proc.path, proc.kind, TRANSPORT, code, time.perf_counter() - started)

    def _unexpected(self, exc: BaseException, path: str) -> TRPCError:
        """As /trpc: logged whole, answered generically in production."""
        logger.bind(procedure=path).opt(exception=exc).error("procedure_exception")
        message = "Internal server error" if self.settings.is_production else (str(exc) or type(exc).__name__)
        return TRPCError(ErrorCode.INTERNAL_SERVER_ERROR, message, cause=exc)
