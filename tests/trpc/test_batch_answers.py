"""What a batch call answers is its output as the call ended, whatever the batch's later calls do afterwards."""

from __future__ import annotations

import asyncio
import json

from multidict import CIMultiDict, MultiDict

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.registry import Registry, Router
from gateway.settings import Settings
from gateway.trpc.resolver import TrpcRequest, TrpcResolver


def _registry(shared: list[int]) -> Registry:
    root = Router()

    @root.query(access=PUBLIC)
    def items(ctx: CallContext) -> list[int]:
        return shared  # the same list every time, as a procedure returning its own state would

    @root.query(access=PUBLIC)
    def add_item(ctx: CallContext) -> int:
        shared.append(len(shared))
        return len(shared)

    @root.query(access=PUBLIC)
    async def add_item_later(ctx: CallContext) -> int:
        await asyncio.sleep(0)
        shared.append(-1)
        return len(shared)

    return Registry(root)


def _batch(paths: str) -> list[object]:
    settings = Settings()
    resolver = TrpcResolver(_registry([]), settings)
    request = TrpcRequest("GET", "/" + paths, MultiDict({"batch": "1"}), CIMultiDict())
    response = asyncio.run(resolver.resolve(request, CallContext("pay_1", settings)))
    assert response.status == 200, response.body
    answers: list[object] = json.loads(response.body)
    return answers


def test_a_call_answers_its_output_as_it_ended_not_as_a_later_call_left_it() -> None:
    assert _batch("items,addItem,items") == [
        {"result": {"data": []}},
        {"result": {"data": 1}},
        {"result": {"data": [0]}},
    ]


def test_a_later_async_call_does_not_change_an_earlier_plain_calls_answer() -> None:
    assert _batch("items,addItemLater") == [{"result": {"data": []}}, {"result": {"data": 1}}]
