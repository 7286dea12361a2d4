"""The procedure registry: declaration from annotations, nesting, names, and what it refuses."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.registry import Registry, Router
from gateway.settings import Settings


class In(msgspec.Struct):
    x: int


class Out(msgspec.Struct):
    y: int


def test_paths_kinds_and_types_come_from_the_declaration() -> None:
    inner = Router()

    @inner.query(access=PUBLIC)
    async def get_thing(ctx: CallContext, input: In) -> Out:
        """Gets the thing."""
        return Out(y=input.x)

    @inner.mutation(access=PUBLIC, name="doIt")
    async def do_it_differently(ctx: CallContext) -> None:
        return None

    root = Router()
    root.include("stripe", inner)
    registry = Registry(root)

    assert [(p.path, p.kind) for p in registry] == [("stripe.getThing", "query"), ("stripe.doIt", "mutation")]
    thing = registry.get("stripe.getThing")
    assert thing is not None
    assert thing.input is not None
    assert thing.input.type is In
    assert not thing.input.accepts_none
    assert thing.output_type is Out
    assert thing.description == "Gets the thing."
    do_it = registry.get("stripe.doIt")
    assert do_it is not None
    assert do_it.input is None
    assert registry.get("getThing") is None


async def test_plain_function_procedures_are_called_without_awaiting() -> None:
    root = Router()

    @root.query(access=PUBLIC)
    def triple(ctx: CallContext, input: In) -> int:
        return input.x * 3

    @root.query(access=PUBLIC)
    async def later(ctx: CallContext) -> int:
        return 7

    registry = Registry(root)
    proc = registry.get("triple")
    assert proc is not None
    assert not proc.is_async
    assert proc.invoke(CallContext("abc", Settings()), In(x=2)) == 6
    assert await registry.call(proc, CallContext("abc", Settings()), In(x=5)) == 15
    later_proc = registry.get("later")
    assert later_proc is not None
    assert later_proc.is_async
    assert await registry.call(later_proc, CallContext("abc", Settings()), None) == 7


async def test_call_passes_context_and_input() -> None:
    root = Router()

    @root.query(access=PUBLIC)
    async def double(ctx: CallContext, input: In) -> Out:
        return Out(y=input.x * 2 + len(ctx.request_id))

    registry = Registry(root)
    proc = registry.get("double")
    assert proc is not None
    result = await registry.call(proc, CallContext("abc", Settings()), In(x=5))
    assert result == Out(y=13)


def test_optional_and_any_inputs() -> None:
    root = Router()

    @root.query(access=PUBLIC)
    async def maybe(ctx: CallContext, input: In | None) -> int:
        return 0

    @root.query(access=PUBLIC)
    async def anything(ctx: CallContext, input: Any) -> int:
        return 0

    registry = Registry(root)
    maybe_spec = registry.procedures["maybe"].input
    anything_spec = registry.procedures["anything"].input
    assert maybe_spec is not None
    assert maybe_spec.accepts_none
    assert not maybe_spec.passthrough
    assert anything_spec is not None
    assert anything_spec.passthrough


def test_registration_errors() -> None:
    root = Router()

    @root.query(access=PUBLIC)
    async def dup(ctx: CallContext) -> int:
        return 1

    with pytest.raises(ValueError, match="registered twice"):
        root.query(dup, access=PUBLIC)

    class NotAFunction:
        pass

    with pytest.raises(TypeError, match="must be a function"):
        root.query(NotAFunction, access=PUBLIC)

    async def too_many(ctx: CallContext, a: int, b: int) -> int:
        return 1

    with pytest.raises(TypeError, match=r"\(ctx\) or \(ctx, input\)"):
        root.query(too_many, access=PUBLIC)
    with pytest.raises(ValueError, match="invalid"):
        root.include("a.b", Router())
