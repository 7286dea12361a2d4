"""The conformance router: the procedures of shared/reference/trpc-wire.md section 10, as a Python gateway router.

The Node reference server (tests/conformance/node/v11/reference-server.mjs) implements the same router with
@trpc/server and zod, so both can be called by the same clients and compared.

Procedures that never wait are plain functions, as their Node resolvers are, so every wire test covers both kinds:
plain ones run inline, async ones as concurrent calls (`slow` next to `greet` in a batch, say).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import msgspec

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.registry import Router

__all__ = ["fixture_router"]


class GreetInput(msgspec.Struct):
    name: str | msgspec.UnsetType = msgspec.UNSET


class Greeting(msgspec.Struct):
    hello: str


class AddInput(msgspec.Struct):
    a: int
    b: int


class Echo(msgspec.Struct, rename="camel"):
    received: Any
    was_undefined: bool


class SlowInput(msgspec.Struct):
    ms: int


class Waited(msgspec.Struct):
    waited: int


class WhenInput(msgspec.Struct):
    at: datetime


class When(msgspec.Struct, rename="camel"):
    at: datetime
    next_day: datetime


def fixture_router() -> Router:
    root = Router()

    @root.query(access=PUBLIC)
    def greet(ctx: CallContext, input: GreetInput | None) -> Greeting:
        name = input.name if input is not None and isinstance(input.name, str) else "world"
        return Greeting(hello=name)

    @root.query(access=PUBLIC)
    def no_input(ctx: CallContext) -> str:
        return "pong"

    @root.mutation(access=PUBLIC)
    def add(ctx: CallContext, input: AddInput) -> int:
        return input.a + input.b

    def echo(input: Any) -> Echo:
        undefined = input is msgspec.UNSET
        return Echo(received=None if undefined else input, was_undefined=undefined)

    @root.mutation(access=PUBLIC)
    async def echo_mut(ctx: CallContext, input: Any) -> Echo:
        return echo(input)

    @root.query(access=PUBLIC, name="echo")
    async def echo_query(ctx: CallContext, input: Any) -> Echo:
        return echo(input)

    @root.query(access=PUBLIC)
    async def boom(ctx: CallContext) -> str:
        raise RuntimeError("kaboom")

    @root.query(access=PUBLIC)
    async def throw_code(ctx: CallContext, input: str) -> str:
        raise TRPCError(ErrorCode[input], f"thrown {input}")

    @root.query(access=PUBLIC)
    def boom_plain(ctx: CallContext) -> str:
        """Python only: a plain (non-async) procedure that fails unexpectedly."""
        raise RuntimeError("plain kaboom")

    @root.query(access=PUBLIC)
    def throw_code_plain(ctx: CallContext, input: str) -> str:
        """Python only: a plain procedure that throws a tRPC error."""
        raise TRPCError(ErrorCode[input], f"thrown plainly {input}")

    @root.query(access=PUBLIC)
    async def slow(ctx: CallContext, input: SlowInput) -> Waited:
        await asyncio.sleep(input.ms / 1000)
        return Waited(waited=input.ms)

    @root.query(access=PUBLIC)
    def when(ctx: CallContext, input: WhenInput) -> When:
        return When(at=input.at, next_day=input.at + timedelta(days=1))

    @root.query(access=PUBLIC)
    def ret_undefined(ctx: CallContext) -> None:
        return None

    @root.query(access=PUBLIC)
    async def awaits_a_cancelled_future(ctx: CallContext) -> str:
        """Python only: awaits a future that something else cancelled."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        future.cancel()
        return await future

    @root.query(access=PUBLIC)
    async def whoami(ctx: CallContext) -> dict[str, str] | None:
        """Echoes the connectionParams the request carried."""
        return ctx.connection_params

    deep = Router()

    @deep.query(access=PUBLIC)
    async def hi(ctx: CallContext) -> str:
        return "hi"

    nested = Router()
    nested.include("deep", deep)
    root.include("nested", nested)
    return root
