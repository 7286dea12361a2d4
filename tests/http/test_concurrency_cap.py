"""GATEWAY_MAX_CONCURRENT_REQUESTS: past the cap, requests are refused at once (503, retry-after), never queued;
the metrics and health routes stay outside it."""

from __future__ import annotations

import asyncio

import aiohttp

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.server import running_gateway

DEADLINE = 5.0


async def test_requests_past_the_cap_are_503_at_once_and_metrics_still_answer(
    http: aiohttp.ClientSession,
) -> None:
    entered = asyncio.Semaphore(0)
    release = asyncio.Event()
    router = Router()

    @router.query(access=PUBLIC)
    async def block(ctx: CallContext) -> str:
        entered.release()
        await release.wait()
        return "done"

    @router.query(access=PUBLIC)
    def greet(ctx: CallContext) -> str:
        return "hello"

    async def call(path: str) -> tuple[int, dict[str, str], bytes]:
        async with http.get(gateway.base_url + path) as response:
            return response.status, dict(response.headers), await response.read()

    async with running_gateway(Settings(gateway_max_concurrent_requests=2), router) as gateway:
        blocked = [asyncio.ensure_future(call("/trpc/block")) for _ in range(2)]
        for _ in blocked:
            await asyncio.wait_for(entered.acquire(), DEADLINE)  # both are in their handler

        # Refused at once, not queued: a queued request would wait for the blocked ones, past the deadline.
        status, headers, body = await asyncio.wait_for(call("/trpc/greet"), DEADLINE)
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert b'"code":"SERVICE_UNAVAILABLE"' in body
        status, _, body = await call("/rpc")
        assert status == 503
        assert b'"jsonrpc":"2.0"' in body

        for path in ("/metrics/payments/health", "/metrics/payments", "/metrics/payments/prometheus"):
            _, _, body = await asyncio.wait_for(call(path), DEADLINE)
            # (health may be 503 on its own: no store behind this router) never refused by the cap
            assert b"Too many requests in progress" not in body

        release.set()
        assert [status for status, _, _ in await asyncio.gather(*blocked)] == [200, 200]
        status, _, _ = await call("/trpc/greet")
        assert status == 200  # the slots are free again


async def test_clients_trickling_their_bodies_in_do_not_take_the_slots(http: aiohttp.ClientSession) -> None:
    """A slow body holds a connection, not one of the cap's slots: others are served meanwhile, and the slow
    client gets a 408 once GATEWAY_BODY_TIMEOUT has passed."""
    router = Router()

    @router.query(access=PUBLIC)
    def greet(ctx: CallContext) -> str:
        return "hello"

    settings = Settings(gateway_max_concurrent_requests=2, gateway_body_timeout=1.0)
    async with running_gateway(settings, router) as gateway:
        host, port = gateway.base_url.removeprefix("http://").split(":")
        slow = []
        for path in ("/trpc/greet", "/rpc", "/webhooks/stripe"):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                "content-length: 100\r\n\r\n{".encode()
            )
            await writer.drain()
            slow.append((reader, writer))

        for _ in range(3):
            async with http.get(gateway.base_url + "/trpc/greet") as response:
                assert response.status == 200

        for reader, writer in slow:
            head = await asyncio.wait_for(reader.read(), DEADLINE)  # answered, then the connection closes
            assert head.startswith(b"HTTP/1.1 408"), head[:80]
            writer.close()
