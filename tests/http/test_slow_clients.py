"""Slow clients and slow handlers, on a real socket: the head deadline (slowloris), the body deadline, idle keep-alive
connections, and the handler deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import msgspec

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.app import LINGERING_SECONDS
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.server import RunningGateway, running_gateway

TIMEOUT = 0.5
MARGIN = 1.5
"""Extra seconds a close may take beyond its timeout on a loaded test machine."""


class Nap(msgspec.Struct):
    seconds: float


def slow_router() -> Router:
    router = Router()

    @router.query(access=PUBLIC)
    def greet(ctx: CallContext) -> str:
        return "hello"

    @router.mutation(access=PUBLIC)
    def echo(ctx: CallContext, input: str) -> str:
        return input

    @router.query(access=PUBLIC)
    async def nap(ctx: CallContext, input: Nap) -> str:
        await asyncio.sleep(input.seconds)
        return "rested"

    return router


@asynccontextmanager
async def connection(
    gateway: RunningGateway,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()


async def read_to_close(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not within `within` s)."""
    return await asyncio.wait_for(reader.read(), within)


def status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_a_head_sent_byte_by_byte_is_cut_off_with_a_408_after_the_header_timeout() -> None:
    async with (
        running_gateway(Settings(gateway_header_timeout=TIMEOUT), slow_router()) as gateway,
        connection(gateway) as (reader, writer),
    ):
        started = time.monotonic()
        closed = asyncio.ensure_future(read_to_close(reader, TIMEOUT + MARGIN))
        for byte in b"GET /trpc/greet HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)  # the client's slowness, not a wait for the server
        raw = await closed
        elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + MARGIN
    status, body = status_and_body(raw)
    assert status == 408
    assert json.loads(body)["error"]["data"] == {"code": "TIMEOUT", "httpStatus": 408}
    assert b"x-content-type-options: nosniff" in raw


async def test_a_head_in_a_few_chunks_within_the_timeout_is_served(http: aiohttp.ClientSession) -> None:
    async with (
        running_gateway(Settings(gateway_header_timeout=TIMEOUT), slow_router()) as gateway,
        connection(gateway) as (reader, writer),
    ):
        for chunk in (b"GET /trpc/greet HT", b"TP/1.1\r\nHost: x\r\n", b"Connection: close\r\n\r\n"):
            writer.write(chunk)
            await asyncio.sleep(TIMEOUT / 5)
        status, _ = status_and_body(await read_to_close(reader, 5))
        assert status == 200
        # And heads that arrive whole are never timed out.
        async with http.get(gateway.trpc_url + "/greet") as response:
            assert response.status == 200


async def test_a_body_sent_too_slowly_is_a_408_timeout_and_the_connection_is_closed() -> None:
    settings = Settings(gateway_body_timeout=TIMEOUT, gateway_header_timeout=30)
    async with running_gateway(settings, slow_router()) as gateway:
        for path, shape in (("/trpc/echo", "trpc"), ("/rpc", "jsonrpc")):
            async with connection(gateway) as (reader, writer):
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 50\r\n\r\n".encode()
                    + b'{"jsonrpc"'
                )
                started = time.monotonic()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT + MARGIN)
                elapsed = time.monotonic() - started
                length = int(
                    next(
                        line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
                    ).split(b":")[1]
                )
                body = await asyncio.wait_for(reader.readexactly(length), MARGIN)
                # Closed after aiohttp's short lingering (it drops what the client still sends, for 2 s at most).
                assert await read_to_close(reader, LINGERING_SECONDS + MARGIN) == b""
            assert TIMEOUT <= elapsed < TIMEOUT + MARGIN
            status, _ = status_and_body(head)
            assert status == 408
            error = json.loads(body)["error"]
            assert error["data"]["code"] == "TIMEOUT"
            assert ("jsonrpc" in json.loads(body)) == (shape == "jsonrpc")


async def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout() -> None:
    async with (
        running_gateway(Settings(gateway_keepalive_timeout=TIMEOUT), slow_router()) as gateway,
        connection(gateway) as (reader, writer),
    ):
        writer.write(b"GET /trpc/greet HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        await read_to_close(reader, TIMEOUT + MARGIN)  # the rest of the body, then the close
        assert time.monotonic() - answered >= TIMEOUT * 0.9


async def test_a_handler_past_the_handler_timeout_is_answered_408_timeout(
    http: aiohttp.ClientSession,
) -> None:
    settings = Settings(gateway_handler_timeout=TIMEOUT)
    async with running_gateway(settings, slow_router()) as gateway:
        started = time.monotonic()
        async with http.get(gateway.trpc_url + '/nap?input={"seconds":30}') as response:
            assert response.status == 408
            assert (await response.json())["error"]["data"]["code"] == "TIMEOUT"
        assert time.monotonic() - started < TIMEOUT + MARGIN
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "nap", "params": {"seconds": 30}}
        async with http.post(gateway.base_url + "/rpc", json=rpc) as response:
            answer = await response.json()
            assert response.status == 408
            assert answer["jsonrpc"] == "2.0"
            assert answer["error"]["data"]["code"] == "TIMEOUT"
        # A quick call is not affected, and the gateway goes on serving.
        async with http.get(gateway.trpc_url + '/nap?input={"seconds":0}') as response:
            assert response.status == 200


async def test_a_stream_past_the_handler_timeout_is_cut_short(http: aiohttp.ClientSession) -> None:
    settings = Settings(gateway_handler_timeout=TIMEOUT)
    async with running_gateway(settings, slow_router()) as gateway:
        url = gateway.trpc_url + '/greet,nap?batch=1&input={"1":{"seconds":30}}'
        started = time.monotonic()
        async with http.get(url, headers={"trpc-accept": "application/jsonl"}) as response:
            assert response.status == 200  # the head went out before the deadline
            try:
                await response.read()
            except aiohttp.ClientPayloadError:
                pass
            else:
                raise AssertionError("the stream ended as if complete")
        assert time.monotonic() - started < TIMEOUT + MARGIN
