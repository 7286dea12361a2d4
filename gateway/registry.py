"""The procedure registry: every procedure declared once, read by every transport and schema export.

A procedure is a function of a `CallContext` and, optionally, one msgspec-typed input:

    stripe = Router()

    @stripe.query(access=PUBLIC)
    def get_config(ctx: CallContext) -> StripeConfig: ...

    @stripe.mutation(access=USER, name="createPaymentIntent")
    async def create_payment_intent(ctx: CallContext, input: CreatePaymentIntentInput) -> PaymentIntentOut: ...

Every procedure declares who may call it (`gateway.auth.access`): there is no default, so none is open by mistake.

Types are read from the annotations once, at registration, so no reflection happens per request.

Procedures that wait on anything (Stripe, the store) are `async def`. One that never waits (it answers from
settings or memory, like `stripe.getConfig`) may be a plain `def`, as a tRPC resolver may return a plain value:
it runs inline, without the task a batch gives each async call. It must not block: it runs on the event loop.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

import msgspec

from gateway import codec
from gateway.auth.access import Access
from gateway.context import CallContext

__all__ = ["InputSpec", "Procedure", "ProcedureKind", "Registry", "Router"]

ProcedureKind = Literal["query", "mutation"]
Handler = Callable[..., Any]
"""An async function returning the output, or (for procedures that never wait) a plain one."""
F = TypeVar("F", bound=Handler)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How to read a procedure's input: its type, a decoder built once, and how `undefined` is treated."""

    type: Any
    decoder: msgspec.json.Decoder[Any]
    accepts_none: bool
    """`undefined` input becomes None when the type allows None; otherwise it is a validation error."""
    passthrough: bool
    """The type is `object`/`Any`: the input is handed over as is, `undefined` (msgspec.UNSET) included."""


@dataclass(frozen=True, slots=True)
class Procedure:
    """One registered procedure. `path` is its dotted tRPC path, e.g. `stripe.getConfig`."""

    path: str
    kind: ProcedureKind
    handler: Handler
    input: InputSpec | None
    output_type: Any
    description: str
    access: Access
    """Who may call it; checked before the input is read (`gateway.auth.guard`)."""
    output_has_datetime: bool = False
    """Computed at registration: plain-JSON output then writes datetimes the JavaScript way."""
    is_async: bool = True
    """The handler is a coroutine function; otherwise it returns its output directly."""

    def invoke(self, ctx: CallContext, value: object) -> Any:
        """Call the handler with an already-validated input: a coroutine for an async procedure, else the output."""
        if self.input is None:
            return self.handler(ctx)
        return self.handler(ctx, value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _input_spec(type_: Any) -> InputSpec:
    bare = codec.strip_annotated(type_)
    passthrough = bare is Any or bare is object
    accepts_none = typing.get_origin(bare) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(bare)
    return InputSpec(type_, msgspec.json.Decoder(type_), accepts_none, passthrough)


def _make_procedure(
    fn: Handler, kind: ProcedureKind, access: Access, name: str | None
) -> tuple[str, Procedure]:
    if not callable(fn) or inspect.isclass(fn):
        raise TypeError(f"procedure {fn!r} must be a function (async def, or def if it never waits)")
    is_async = inspect.iscoroutinefunction(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters)
    if not 1 <= len(params) <= 2:
        raise TypeError(f"procedure {fn.__qualname__} must take (ctx) or (ctx, input)")
    spec = _input_spec(hints[params[1]]) if len(params) == 2 else None
    proc_name = name or _camel(fn.__name__)
    doc = inspect.getdoc(fn) or ""
    output_type = hints.get("return", None)
    has_datetime = codec.may_contain_datetime(output_type)
    return proc_name, Procedure(proc_name, kind, fn, spec, output_type, doc, access, has_datetime, is_async)


class Router:
    """A named group of procedures and sub-routers; paths join with `.` as in tRPC."""

    def __init__(self) -> None:
        self._entries: dict[str, Procedure | Router] = {}

    def _add(self, name: str, entry: Procedure | Router) -> None:
        if not name or "." in name or "," in name:
            raise ValueError(f"invalid procedure or router name {name!r}")
        if name in self._entries:
            raise ValueError(f"{name!r} is registered twice")
        self._entries[name] = entry

    def _decorator(self, kind: ProcedureKind, fn: F | None, access: Access, name: str | None) -> Any:
        if not isinstance(access, Access):
            raise TypeError(f"access must be a gateway.auth.access rule, not {access!r}")

        def register(f: F) -> F:
            proc_name, proc = _make_procedure(f, kind, access, name)
            self._add(proc_name, proc)
            return f

        return register(fn) if fn is not None else register

    @overload
    def query(self, fn: F, /, *, access: Access, name: str | None = None) -> F: ...
    @overload
    def query(self, fn: None = None, /, *, access: Access, name: str | None = None) -> Callable[[F], F]: ...
    def query(self, fn: F | None = None, /, *, access: Access, name: str | None = None) -> Any:
        """Register a query (read-only, GET) that `access` may call. The tRPC name is the function name in
        camelCase unless given."""
        return self._decorator("query", fn, access, name)

    @overload
    def mutation(self, fn: F, /, *, access: Access, name: str | None = None) -> F: ...
    @overload
    def mutation(
        self, fn: None = None, /, *, access: Access, name: str | None = None
    ) -> Callable[[F], F]: ...
    def mutation(self, fn: F | None = None, /, *, access: Access, name: str | None = None) -> Any:
        """Register a mutation (changes state, POST) that `access` may call."""
        return self._decorator("mutation", fn, access, name)

    def include(self, name: str, router: Router) -> None:
        """Mount a sub-router under `name` (e.g. `stripe`)."""
        self._add(name, router)

    def walk(self, prefix: str = "") -> Iterator[Procedure]:
        """Every procedure with its full dotted path, in registration order."""
        for name, entry in self._entries.items():
            path = f"{prefix}{name}"
            if isinstance(entry, Router):
                yield from entry.walk(f"{path}.")
            else:
                yield dataclasses.replace(entry, path=path)


class Registry:
    """The flattened, immutable view of a root router that transports look procedures up in."""

    def __init__(self, root: Router) -> None:
        self.procedures: dict[str, Procedure] = {proc.path: proc for proc in root.walk()}

    def get(self, path: str) -> Procedure | None:
        return self.procedures.get(path)

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self.procedures.values())

    async def call(self, procedure: Procedure, ctx: CallContext, value: object) -> Any:
        """Invoke a procedure, async or not, with an already-validated input; the output."""
        result = procedure.invoke(ctx, value)
        return await result if procedure.is_async else result
