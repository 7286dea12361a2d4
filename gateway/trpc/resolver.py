"""From a parsed HTTP request to a tRPC response: routing, method rules, calls, envelopes, statuses, streams.

The order of checks follows @trpc/server v11's `resolveResponse`: errors about the request as a whole (content
type, path encoding, batching, stream flags, batch size, mixed types) come first and are answered as one object;
then each call is resolved on its own (unknown path, wrong method, bad input, the procedure's own errors).
"""

from __future__ import annotations

import asyncio
import time
import typing
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping
from functools import partial
from typing import Any, Final

import msgspec
from loguru import logger

from gateway.auth.guard import admit, needs_admission
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.metrics.recorder import OK, Metrics
from gateway.registry import Procedure, Registry
from gateway.settings import Settings
from gateway.trpc import request as wire
from gateway.trpc import tasks
from gateway.trpc.envelopes import error_envelope, error_shape, response_status
from gateway.trpc.inputs import InputReader
from gateway.trpc.request import StreamMode
from gateway.trpc.transformers import JSON, Transformer

__all__ = ["CallResult", "TrpcRequest", "TrpcResolver", "TrpcResponse"]

JSON_HEADERS: Final[Mapping[str, str]] = {"content-type": "application/json", "vary": "trpc-accept, accept"}
"""Shared by the responses that add nothing to them: never changed in place."""
V10_STREAM_HEADERS: Final = {"content-type": "application/json", "vary": "trpc-batch-mode"}
_NONE_TYPE: Final = type(None)
_UNSET: Final = msgspec.UNSET
_POST_ONLY: Final = ("POST",)
_Call = typing.Union["CallResult", Coroutine[Any, Any, "CallResult"]]
"""A call decided without waiting (its result), or an async procedure still to run (a coroutine)."""
_Done = typing.Union[bytes, "CallResult"]
"""A call's answer: its success envelope, or its result (to encode)."""
_CallFactory = Callable[[], list[_Call]]
_UTF8_BOM: Final = b"\xef\xbb\xbf"
TRANSPORT_SINGLE: Final = "http"
TRANSPORT_BATCH: Final = "http_batch"
TRANSPORT_STREAM: Final = "http_stream"
TRANSPORTS: Final = (TRANSPORT_SINGLE, TRANSPORT_BATCH, TRANSPORT_STREAM)
UNKNOWN_PROCEDURE: Final = "unknown"
"""The procedure label of a call to a path the registry does not have (paths are the caller's: unbounded)."""


class TrpcRequest(msgspec.Struct):
    """What the resolver needs from an HTTP request; the web adapter fills it.

    This and the other records made per request or per call are msgspec Structs rather than dataclasses: built in
    C, not by a generated `__init__`, they take half the instructions (a batch of ten makes ten `CallResult`s)."""

    method: str
    path: str
    """The raw (still percent-encoded) URL path after the `/trpc` prefix."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes | None = None
    body_error: TRPCError | None = None


class TrpcResponse(msgspec.Struct):
    """A complete body, or a stream of lines for JSONL / v10 streaming (always status 200)."""

    status: int
    headers: Mapping[str, str]
    """Read only: may be a shared constant."""
    body: bytes = b""
    stream: AsyncGenerator[bytes, None] | None = None


class CallResult(msgspec.Struct):
    """The outcome of one call: its output, or the error to send."""

    index: int
    path: str
    procedure: Procedure | None
    output: object = None
    error: TRPCError | None = None
    """With the response headers it needs, if any (`allow` on a 405, `retry-after` on a 429)."""
    started: float = 0.0
    """`perf_counter()` when the call began (for its duration in the metrics)."""
    ended: float = msgspec.field(default_factory=time.perf_counter)
    """`perf_counter()` when the procedure was done (set again by `_run` for an async one): a call's duration is
    its own, not that of the slowest call of its batch, whose answers all go out together."""


class _Begun(msgspec.Struct):
    """The calls of a request once begun (`TrpcResolver._begin`)."""

    parts: list[bytes | CallResult | None]
    """Per call: its success envelope, its result, or None for an async call whose run is in `waiting`."""
    waiting: list[Coroutine[Any, Any, CallResult]]
    """The async calls' runs, in the order of their calls."""
    answered: int
    """How many parts are envelopes."""


class TrpcResolver:
    """Resolves tRPC requests against one registry with one set of settings."""

    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics or Metrics()
        for proc in registry.procedures.values():
            self.metrics.declare_procedure(proc.path, proc.kind, TRANSPORTS)
        self.expose_stack = not settings.is_production
        query_methods = ("GET", "POST") if settings.gateway_trpc_allow_method_override else ("GET",)
        self._allowed_methods: dict[str, tuple[str, ...]] = {"query": query_methods, "mutation": _POST_ONLY}
        """By procedure kind; any other kind than these: POST."""
        self._guarded = frozenset(proc.path for proc in registry if needs_admission(proc))
        """Paths of the procedures `admit` may refuse: the others (public queries) skip it, a call less per call."""

    # -- entry point ---------------------------------------------------------------------------------------------

    async def resolve(self, req: TrpcRequest, ctx: CallContext) -> TrpcResponse:
        transformer: Transformer = JSON
        try:
            is_batch = req.query.get("batch") == "1"
            # The transformer first: errors about the whole request are transformed too (a superjson client
            # cannot read a plain one).
            # Positional arguments here and below: keyword matching is a measurable cost on every request.
            reader = InputReader(
                self._raw_input(req), is_batch, self.settings.gateway_trpc_transformer, req.body_error
            )
            transformer = reader.transformer
            # Then @trpc/server's order: the path (its adapter decodes it before anything), then the content type.
            paths = wire.parse_paths(req.path, is_batch)
            if req.method != "GET":  # a GET's content type is not read (written out: a call less per query)
                wire.check_content_type(req.method, req.headers.get("content-type"))
            stream = wire.stream_mode(req.headers)
            procedures = self._check_request(paths, is_batch, stream)
            connection_params = req.query.get("connectionParams")
            if connection_params is not None:
                ctx.connection_params = wire.parse_connection_params(connection_params)
        except TRPCError as error:
            return self._whole_request_error(error, transformer)

        if is_batch:
            self.metrics.batch(TRANSPORT_BATCH if stream is StreamMode.NONE else TRANSPORT_STREAM, len(paths))
        if stream is not StreamMode.NONE and is_batch:
            # Calls are created when the stream is consumed: a response that never starts leaves none behind.
            calls = partial(self._calls, paths, procedures, reader, req.method, ctx)
            if stream is StreamMode.JSONL:
                return TrpcResponse(200, dict(JSON_HEADERS), stream=self._jsonl(calls, reader.transformer))
            return TrpcResponse(
                200, dict(V10_STREAM_HEADERS), stream=self._v10_stream(calls, reader.transformer)
            )
        succeeded: dict[str, list[float]] = {}  # durations of the calls answered successfully, by path
        begun = self._begin(paths, procedures, reader, req.method, ctx, transformer, succeeded)
        if not is_batch:
            part = begun.parts[0]
            if isinstance(part, bytes):
                proc = procedures[0]
                assert proc is not None  # it answered: a known procedure
                self.metrics.procedure_call(
                    proc.path, proc.kind, TRANSPORT_SINGLE, OK, succeeded[proc.path][0]
                )
                return TrpcResponse(200, JSON_HEADERS, part)
            result = part if part is not None else await begun.waiting[0]
            return self._single_response(result, transformer)
        if begun.answered == len(begun.parts):
            # Every call answered already (plain procedures, as most are): the usual batch, joined at once.
            self._count_successes(succeeded, TRANSPORT_BATCH)
            envelopes = typing.cast(list[bytes], begun.parts)
            return TrpcResponse(200, JSON_HEADERS, b"[" + b",".join(envelopes) + b"]")
        return self._batch_response(await _in_order(begun), transformer, succeeded)

    # -- request-wide checks -------------------------------------------------------------------------------------

    @staticmethod
    def _raw_input(req: TrpcRequest) -> bytes | None:
        if req.method == "GET":
            text = req.query.get("input")
            return text.encode() if text else None
        body = req.body
        if body and body.startswith(_UTF8_BOM):  # decoded away by @trpc/server's TextDecoder too
            body = body[len(_UTF8_BOM) :]
        return body or None

    def _check_request(self, paths: list[str], is_batch: bool, stream: StreamMode) -> list[Procedure | None]:
        settings = self.settings
        if is_batch and not settings.gateway_trpc_allow_batching:
            raise TRPCError(
                ErrorCode.BAD_REQUEST, "Batching is not enabled on the server", whole_request=True
            )
        if stream is StreamMode.JSONL and not is_batch:
            raise TRPCError(
                ErrorCode.BAD_REQUEST,
                "Streaming requests must be batched (you can do a batch of 1)",
                whole_request=True,
            )
        if is_batch and len(paths) > settings.gateway_trpc_max_batch_size:
            raise TRPCError(ErrorCode.BAD_REQUEST, "Batch call exceeds maximum size", whole_request=True)
        find = self.registry.procedures.get
        procedures = [find(path) for path in paths]
        if len(procedures) > 1 and len({proc.kind for proc in procedures if proc is not None}) > 1:
            kinds = list(dict.fromkeys(proc.kind for proc in procedures if proc is not None))  # as they come
            raise TRPCError(
                ErrorCode.BAD_REQUEST,
                f"Cannot mix procedure types in call: {', '.join(kinds)}",
                whole_request=True,
            )
        return procedures

    # -- one call ------------------------------------------------------------------------------------------------

    def _calls(
        self,
        paths: list[str],
        procedures: list[Procedure | None],
        reader: InputReader,
        method: str,
        ctx: CallContext,
    ) -> list[_Call]:
        """Every call begun, each its result or its async run (the streams, which encode each result as it comes)."""
        begun = self._begin(paths, procedures, reader, method, ctx, None, {})
        runs = iter(begun.waiting)
        return [part if isinstance(part, CallResult) else next(runs) for part in begun.parts]

    def _begin(
        self,
        paths: list[str],
        procedures: list[Procedure | None],
        reader: InputReader,
        method: str,
        ctx: CallContext,
        transformer: Transformer | None,
        succeeded: dict[str, list[float]],
    ) -> _Begun:
        """Every call begun, in order: all that needs no waiting (the path, the method, the input, and the whole run
        of a plain, non-async, procedure) is done. With a `transformer`, a plain procedure's defined output (nearly
        every call's) is its success envelope at once, its duration added to `succeeded` for the metrics; any other
        call is its result, or, for an async procedure, None with its run in `waiting`. One loop, with no record or
        method call per call beyond the procedure's own and reading its input: in a batch, every step counts."""
        parts: list[bytes | CallResult | None] = []
        waiting: list[Coroutine[Any, Any, CallResult]] = []
        answered = 0
        guarded = self._guarded
        perf_counter = time.perf_counter
        for index, path in enumerate(paths):
            started = perf_counter()
            proc = procedures[index]
            if proc is None or method not in self._allowed_methods.get(proc.kind, _POST_ONLY):
                parts.append(self._refused(index, path, proc, method, started))
                continue
            try:
                if path in guarded:
                    admit(proc, ctx)  # who may call it and abuse limits come before its input is even read
                spec = proc.input
                value = None if spec is None else reader.read(index, spec)
                if proc.is_async:
                    parts.append(None)
                    waiting.append(self._run(CallResult(index, path, proc, None, None, started), ctx, value))
                    continue
                output = proc.handler(ctx) if spec is None else proc.handler(ctx, value)  # `proc.invoke`
            except Exception as exc:
                parts.append(self._failed(CallResult(index, path, proc, None, None, started), exc))
                continue
            ended = perf_counter()
            if transformer is not None and output is not None and output is not _UNSET:
                try:
                    envelope = transformer.result(output, proc.output_has_datetime)
                except Exception as exc:
                    call = CallResult(index, path, proc, None, None, started, ended)
                    call.error = self._unencodable_output(exc, call)
                    parts.append(call)
                    continue
                parts.append(envelope)
                answered += 1
                same = succeeded.get(path)
                if same is None:
                    succeeded[path] = [ended - started]
                else:
                    same.append(ended - started)
                continue
            parts.append(CallResult(index, path, proc, output, None, started, ended))
        return _Begun(parts, waiting, answered)

    def _refused(
        self, index: int, path: str, proc: Procedure | None, method: str, started: float
    ) -> CallResult:
        """A call to no procedure, or with a method its procedure does not take."""
        if proc is None:
            error = TRPCError(ErrorCode.NOT_FOUND, f'No procedure found on path "{path}"')
            return CallResult(index, path, None, None, error, started)
        allowed = self._allowed_methods.get(proc.kind, _POST_ONLY)
        error = TRPCError(
            ErrorCode.METHOD_NOT_SUPPORTED,
            f'Unsupported {method}-request to {proc.kind} procedure at path "{path}"',
            headers={"allow": ", ".join(allowed)},
        )
        return CallResult(index, path, proc, None, error, started)

    async def _run(self, call: CallResult, ctx: CallContext, value: object) -> CallResult:
        """`call` (no outcome yet) once the procedure has run."""
        try:
            return await self._outcome(call, ctx, value)
        finally:
            call.ended = time.perf_counter()

    async def _outcome(self, call: CallResult, ctx: CallContext, value: object) -> CallResult:
        if call.procedure is None:  # pragma: no cover - `_calls` answers unknown paths itself
            raise LookupError(call.path)
        try:
            output = await call.procedure.invoke(ctx, value)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this request is being cancelled (the server is stopping): let it end
            # A cancellation the procedure caught from something it awaited (a future someone else cancelled):
            # an error of this call like any other, not the end of the whole request.
            call.error = self._unexpected(exc, call.path)
            return call
        except Exception as exc:
            return self._failed(call, exc)
        call.output = output
        return call

    def _failed(self, call: CallResult, exc: Exception) -> CallResult:
        if isinstance(exc, TRPCError):
            call.error = exc
        else:
            call.error = self._unexpected(exc, call.path)
        return call

    def _unexpected(self, exc: BaseException, path: str) -> TRPCError:
        """An exception nobody meant the client to see: logged whole (the line names the request through the
        log patcher), answered generically in production."""
        logger.bind(procedure=path).opt(exception=exc).error("procedure_exception")
        message = "Internal server error" if self.settings.is_production else (str(exc) or type(exc).__name__)
        return TRPCError(ErrorCode.INTERNAL_SERVER_ERROR, message, cause=exc)

    # -- encoding ------------------------------------------------------------------------------------------------

    def _envelope(self, result: CallResult, transformer: Transformer, transport: str) -> bytes:
        """The call's envelope, its outcome counted in the metrics."""
        envelope = self._encoded(result, transformer)
        self._count(result, transport)
        return envelope

    def _encoded(self, result: CallResult, transformer: Transformer) -> bytes:
        """The call's envelope; an output that cannot be encoded makes the call an error (counted as one)."""
        if result.error is None:
            proc = result.procedure
            output = result.output
            try:
                # Only `None` or UNSET can be `undefined`: the common output is not asked (`_is_undefined`).
                if (output is None or output is msgspec.UNSET) and _is_undefined(result):
                    return transformer.undefined_data
                return transformer.result(output, proc is not None and proc.output_has_datetime)
            except Exception as exc:
                result.error = self._unencodable_output(exc, result)
        return error_envelope(
            transformer, error_shape(result.error, result.path, expose_stack=self.expose_stack)
        )

    def _count(self, result: CallResult, transport: str) -> None:
        """Into the metrics, once the call's outcome is final (its answer encoded)."""
        proc, error = result.procedure, result.error
        self.metrics.procedure_call(
            proc.path if proc is not None else UNKNOWN_PROCEDURE,
            proc.kind if proc is not None else UNKNOWN_PROCEDURE,
            transport,
            OK if error is None else error.code.name,
            result.ended - result.started,
        )

    def _jsonl_line(self, result: CallResult, transformer: Transformer) -> bytes:
        try:
            line = transformer.line([result.index, 0, [[self._envelope_value(result)]]]) + b"\n"
        except Exception as exc:
            if result.error is not None:
                raise
            result.error = self._unencodable_output(exc, result)
            line = transformer.line([result.index, 0, [[self._envelope_value(result)]]]) + b"\n"
        self._count(result, TRANSPORT_STREAM)
        return line

    def _unencodable_output(self, exc: Exception, result: CallResult) -> TRPCError:
        """A procedure returned what cannot be sent (as @trpc/server's output validation would refuse it)."""
        logger.bind(procedure=result.path).opt(exception=exc).error("procedure_output_unencodable")
        return TRPCError(ErrorCode.INTERNAL_SERVER_ERROR, "Output validation failed", cause=exc)

    def _envelope_value(self, result: CallResult) -> dict[str, object]:
        """The envelope as a value (JSONL lines are transformed as a whole, so they need it unencoded)."""
        if result.error is not None:
            return {"error": error_shape(result.error, result.path, expose_stack=self.expose_stack)}
        if _is_undefined(result):
            return {"result": {}}  # no `data`: the client reads it as undefined, with or without superjson
        return {"result": {"data": result.output}}

    def _single_response(self, result: CallResult, transformer: Transformer) -> TrpcResponse:
        body = self._encoded(result, transformer)  # first: a failed encoding makes an error
        self._count(result, TRANSPORT_SINGLE)
        error = result.error
        if error is None:
            return TrpcResponse(200, JSON_HEADERS, body)
        headers = {**JSON_HEADERS, **error.headers} if error.headers else JSON_HEADERS
        return TrpcResponse(error.code.http_status, headers, body)

    def _batch_response(
        self, parts: list[_Done], transformer: Transformer, succeeded: dict[str, list[float]]
    ) -> TrpcResponse:
        """The batch's answer, every call counted in the metrics: the successful calls of one procedure together
        (one metrics update for the ten calls of a batch of ten alike), each failed one on its own."""
        headers = JSON_HEADERS
        envelopes: list[bytes] = []
        failed = False
        for part in parts:
            if isinstance(part, bytes):  # answered by `_begin` already
                envelopes.append(part)
                continue
            envelopes.append(self._encoded(part, transformer))  # first: a failed encoding makes an error
            error = part.error
            if error is None:
                same = succeeded.get(part.path)
                if same is None:
                    succeeded[part.path] = [part.ended - part.started]
                else:
                    same.append(part.ended - part.started)
            else:
                failed = True
                if error.headers:
                    headers = {**headers, **error.headers}
                self._count(part, TRANSPORT_BATCH)
        self._count_successes(succeeded, TRANSPORT_BATCH)
        status = response_status([_status(part) for part in parts]) if failed else 200
        return TrpcResponse(status, headers, b"[" + b",".join(envelopes) + b"]")

    def _count_successes(self, succeeded: dict[str, list[float]], transport: str) -> None:
        """Into the metrics: the successful calls' durations, by path."""
        procedures = self.registry.procedures
        for path, seconds in succeeded.items():
            self.metrics.procedure_calls(path, procedures[path].kind, transport, OK, seconds)

    def _whole_request_error(self, error: TRPCError, transformer: Transformer) -> TrpcResponse:
        error.whole_request = True
        body = error_envelope(transformer, error_shape(error, None, expose_stack=self.expose_stack))
        return TrpcResponse(error.code.http_status, JSON_HEADERS, body)

    # -- streaming -----------------------------------------------------------------------------------------------

    async def _jsonl(self, calls: _CallFactory, transformer: Transformer) -> AsyncGenerator[bytes, None]:
        """v11 JSONL: a head line with one promise per call (chunk id = call index), then one line per call as it
        finishes. The client only needs head[i] -> result -> data to resolve, and this is the simplest encoding it
        accepts (reference 5.4)."""
        pending = calls()
        head = {str(i): [[0], [None, 0, i]] for i in range(len(pending))}
        yield transformer.line(head) + b"\n"
        async for result in _as_finished(pending):
            yield self._jsonl_line(result, transformer)

    async def _v10_stream(self, calls: _CallFactory, transformer: Transformer) -> AsyncGenerator[bytes, None]:
        """v10's `trpc-batch-mode: stream`: `{"i":envelope` then `,"j":envelope` lines in finishing order, then `}`."""
        separator = b"{"
        async for result in _as_finished(calls()):
            envelope = self._envelope(result, transformer, TRANSPORT_STREAM)
            yield b'%s"%d":%s\n' % (separator, result.index, envelope)
            separator = b","
        yield b"}"


async def _in_order(begun: _Begun) -> list[_Done]:
    """Every call's answer in order, the async ones run concurrently."""
    if not begun.waiting:
        return typing.cast(list[_Done], begun.parts)
    finished = iter(await tasks.in_order(begun.waiting))
    return [part if part is not None else next(finished) for part in begun.parts]


def _status(part: _Done) -> int:
    """The HTTP status of one call's answer."""
    if isinstance(part, bytes) or part.error is None:
        return 200
    return part.error.code.http_status


def _as_finished(calls: list[_Call]) -> AsyncIterator[CallResult]:
    """Every call's result as it is ready: those decided without waiting first, then the async ones as they end."""
    ready = [call for call in calls if isinstance(call, CallResult)]
    return tasks.as_finished([call for call in calls if not isinstance(call, CallResult)], ready=ready)


def _is_undefined(result: CallResult) -> bool:
    """A procedure that returns nothing answers `{"result":{}}`, as a TypeScript one returning undefined does."""
    return result.output is msgspec.UNSET or (
        result.output is None and result.procedure is not None and result.procedure.output_type is _NONE_TYPE
    )
