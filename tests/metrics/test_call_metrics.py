"""What the resolver reports for each call: its own duration (not its batch's), its transport and its code."""

from __future__ import annotations

import asyncio

import aiohttp

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.app import METRICS
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.server import running_gateway

SLOW_SECONDS = 0.3


def router() -> Router:
    root, stripe = Router(), Router()

    @stripe.query(access=PUBLIC)
    async def fast(ctx: CallContext) -> str:
        return "fast"

    @stripe.query(access=PUBLIC)
    async def slow(ctx: CallContext) -> str:
        await asyncio.sleep(SLOW_SECONDS)  # the procedure's own work, not a wait in the test
        return "slow"

    @stripe.query(access=PUBLIC)
    def unsendable(ctx: CallContext) -> object:
        return (
            object()
        )  # no JSON for it: a procedure's bug, as an output failing validation is in @trpc/server

    @stripe.query(access=PUBLIC)
    async def unsendable_later(ctx: CallContext) -> object:
        return object()

    root.include("stripe", stripe)
    return root


async def test_each_call_of_a_batch_is_timed_on_its_own() -> None:
    async with running_gateway(Settings(), router()) as gateway, aiohttp.ClientSession() as http:
        url = gateway.trpc_url + "/stripe.fast,stripe.slow,stripe.nope?batch=1&input=%7B%7D"
        async with http.get(url) as response:
            assert response.status == 207

        figures = gateway.app[METRICS].since_start()

    fast = figures.call_seconds[("stripe.fast", "query", "http_batch")]
    slow = figures.call_seconds[("stripe.slow", "query", "http_batch")]
    assert fast.max < SLOW_SECONDS / 3  # answered with the slow one, but not as slow
    assert slow.max >= SLOW_SECONDS
    assert figures.calls[("unknown", "unknown", "http_batch", "NOT_FOUND")] == 1
    assert figures.batch_sizes["http_batch"].max == 3


async def test_a_batchs_calls_are_counted_each_under_its_procedure_and_outcome() -> None:
    """A batch's calls are recorded together, grouped by procedure and outcome: each still counts once, with its
    own duration."""
    async with running_gateway(Settings(), router()) as gateway, aiohttp.ClientSession() as http:
        paths = "stripe.fast,stripe.slow,stripe.fast,stripe.nope,stripe.fast,stripe.nope"
        async with http.get(gateway.trpc_url + f"/{paths}?batch=1&input=%7B%7D") as response:
            assert response.status == 207
        metrics = gateway.app[METRICS]
        figures = metrics.since_start()

    assert figures.calls[("stripe.fast", "query", "http_batch", "OK")] == 3
    assert figures.calls[("stripe.slow", "query", "http_batch", "OK")] == 1
    assert figures.calls[("unknown", "unknown", "http_batch", "NOT_FOUND")] == 2
    fast = figures.call_seconds[("stripe.fast", "query", "http_batch")]
    slow = figures.call_seconds[("stripe.slow", "query", "http_batch")]
    assert (fast.count, slow.count) == (3, 1)
    assert fast.max < SLOW_SECONDS / 3 <= SLOW_SECONDS <= slow.max
    assert metrics.last_payment_request_ok_at is not None  # stripe.* calls are payment requests


async def test_an_output_that_cannot_be_sent_is_an_error_of_its_call_only() -> None:
    """Answered as @trpc/server answers an output failing its validation, and counted as that error, not as OK."""
    unsendable = {"message": "Output validation failed", "code": -32603}
    async with running_gateway(Settings(), router()) as gateway, aiohttp.ClientSession() as http:
        async with http.get(gateway.trpc_url + "/stripe.unsendable") as response:
            assert response.status == 500
            single = await response.json()
        paths = "stripe.fast,stripe.unsendable,stripe.unsendableLater,stripe.fast"
        async with http.get(gateway.trpc_url + f"/{paths}?batch=1&input=%7B%7D") as response:
            assert response.status == 207
            batch = await response.json()
        figures = gateway.app[METRICS].since_start()

    assert {key: single["error"][key] for key in unsendable} == unsendable
    assert batch[0] == batch[3] == {"result": {"data": "fast"}}
    for envelope, path in ((batch[1], "stripe.unsendable"), (batch[2], "stripe.unsendableLater")):
        assert {key: envelope["error"][key] for key in unsendable} == unsendable
        assert envelope["error"]["data"]["path"] == path
    assert figures.calls[("stripe.unsendable", "query", "http", "INTERNAL_SERVER_ERROR")] == 1
    assert figures.calls[("stripe.unsendable", "query", "http_batch", "INTERNAL_SERVER_ERROR")] == 1
    assert figures.calls[("stripe.unsendableLater", "query", "http_batch", "INTERNAL_SERVER_ERROR")] == 1
    assert figures.calls.get(("stripe.unsendable", "query", "http_batch", "OK"), 0) == 0
    assert figures.calls[("stripe.fast", "query", "http_batch", "OK")] == 2
