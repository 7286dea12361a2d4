"""Writes held until the end of the event loop's pass (gateway.http.coalesce): nothing lost, nothing reordered.

The transport's rules are checked on real TCP connections on 127.0.0.1 (asyncio's own transports, wrapped, and a
plain socket receiving); then the gateway's answers through it: pipelined requests, `Connection: close`, a client's
half-close, bodies over the hold limit, a stream mixing small and large writes, a file, many connections at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.coalesce import HELD_BYTES_LIMIT, CoalescingTransport, WriteCoalescer
from gateway.http.protocol import GatewayRunner
from gateway.registry import Router
from gateway.settings import Settings
from tests.support.server import RunningGateway, running_gateway

READ_WITHIN = 10.0
"""Seconds a read may take on a loaded test machine before the test fails rather than hangs."""


@dataclass
class Link:
    """A TCP connection on 127.0.0.1: the sending side's asyncio transport, wrapped, and the receiving socket."""

    inner: asyncio.Transport
    coalescing: CoalescingTransport
    receiving: socket.socket

    def nothing_arrived(self) -> bool:
        """No byte is waiting at the receiver. On loopback a `send` has put its bytes there by the time it returns,
        so this tells bytes held from bytes sent, without running the loop."""
        try:
            return not self.receiving.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True

    async def everything(self) -> bytes:
        """All the bytes the receiver gets until the connection ends (a reset ends it too)."""
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        try:
            while chunk := await asyncio.wait_for(loop.sock_recv(self.receiving, 65536), READ_WITHIN):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


@asynccontextmanager
async def link(coalescer: WriteCoalescer | None = None) -> AsyncIterator[Link]:
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        (inner, _), (receiving, _) = await asyncio.wait_for(
            asyncio.gather(
                loop.create_connection(asyncio.Protocol, "127.0.0.1", listener.getsockname()[1]),
                loop.sock_accept(listener),
            ),
            READ_WITHIN,
        )
    try:
        receiving.setblocking(False)
        yield Link(inner, (coalescer or WriteCoalescer(loop)).wrap(inner), receiving)
    finally:
        inner.abort()
        receiving.close()


async def test_writes_of_one_pass_are_held_until_it_ends_then_sent_in_order() -> None:
    async with link() as connection:
        connection.coalescing.write(b"first ")
        connection.coalescing.write(bytearray(b"second "))
        connection.coalescing.writelines([b"third ", memoryview(b"fourth")])
        assert connection.coalescing.get_write_buffer_size() == len(b"first second third fourth")
        assert connection.nothing_arrived()

        await asyncio.sleep(0)  # the pass ends; the next one sends what was held
        assert connection.coalescing.get_write_buffer_size() == 0
        assert not connection.nothing_arrived()
        connection.coalescing.close()

        assert await connection.everything() == b"first second third fourth"


async def test_a_buffer_reused_after_its_write_is_sent_as_it_was_written() -> None:
    async with link() as connection:
        buffer = bytearray(b"as written")
        connection.coalescing.write(buffer)
        buffer[:] = b"overwritten"
        connection.coalescing.close()

        assert await connection.everything() == b"as written"


async def test_a_write_over_the_hold_limit_follows_what_was_held_and_is_not_held() -> None:
    large = b"L" * HELD_BYTES_LIMIT
    async with link() as connection:
        connection.coalescing.write(b"small")
        connection.coalescing.write(large)
        assert connection.coalescing.get_write_buffer_size() == connection.inner.get_write_buffer_size()
        assert not connection.nothing_arrived()
        connection.coalescing.write(b"after")
        connection.coalescing.close()

        assert await connection.everything() == b"small" + large + b"after"


async def test_writes_adding_up_past_the_hold_limit_are_sent_then_rather_than_held() -> None:
    half = b"h" * (HELD_BYTES_LIMIT // 2 + 1)
    async with link() as connection:
        connection.coalescing.write(half)
        connection.coalescing.write(half)
        assert connection.coalescing.get_write_buffer_size() == connection.inner.get_write_buffer_size()
        connection.coalescing.close()

        assert await connection.everything() == half + half


async def test_closing_sends_what_is_held_first() -> None:
    async with link() as connection:
        connection.coalescing.write(b"last words")
        connection.coalescing.close()
        assert connection.coalescing.is_closing()

        assert await connection.everything() == b"last words"


async def test_write_eof_sends_what_is_held_first() -> None:
    async with link() as connection:
        connection.coalescing.write(b"then eof")
        connection.coalescing.write_eof()

        assert await connection.everything() == b"then eof"


async def test_abort_drops_what_is_held() -> None:
    async with link() as connection:
        connection.coalescing.write(b"never sent")
        connection.coalescing.abort()
        assert connection.coalescing.get_write_buffer_size() == 0
        await asyncio.sleep(0)  # the pass ends

        assert await connection.everything() == b""


async def test_a_connection_whose_held_write_fails_is_aborted_and_the_others_still_get_theirs() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    coalescer = WriteCoalescer(loop)
    try:
        async with link(coalescer) as broken, link(coalescer) as sound:
            broken.coalescing.write(b"held")
            sound.coalescing.write(b"held for the sound one")
            broken.inner.write_eof()  # the held write will now raise (no write after write_eof)
            await asyncio.sleep(0)  # the pass ends: broken's write fails first

            assert sound.coalescing.get_write_buffer_size() == 0
            sound.coalescing.close()
            assert await sound.everything() == b"held for the sound one"
            assert broken.inner.is_closing()
            assert [context["transport"] for context in reported] == [broken.coalescing]
            assert isinstance(reported[0]["exception"], RuntimeError)
    finally:
        loop.set_exception_handler(previous_handler)


# Through the gateway (the `gateway` fixture: the conformance router on a real port, served by `gateway_runner`).


def greet_request(name: str, *, close: bool = False) -> bytes:
    target = "/trpc/greet?input=" + json.dumps({"name": name}, separators=(",", ":"))
    connection = "Connection: close\r\n" if close else ""
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}\r\n".encode()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_WITHIN)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    body = await asyncio.wait_for(reader.readexactly(length), READ_WITHIN)
    return int(lines[0].split(" ", 2)[1]), body


async def open_to(gateway: RunningGateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_pipelined_requests_are_answered_whole_and_in_order(gateway: RunningGateway) -> None:
    reader, writer = await open_to(gateway)
    try:
        writer.write(b"".join(greet_request(name) for name in ("ann", "bob", "cy")))
        answers = [await read_answer(reader) for _ in range(3)]
    finally:
        writer.close()

    assert answers == [
        (200, b'{"result":{"data":{"hello":"%s"}}}' % name) for name in (b"ann", b"bob", b"cy")
    ]


async def test_an_answer_with_connection_close_arrives_whole_before_the_connection_ends(
    gateway: RunningGateway,
) -> None:
    reader, writer = await open_to(gateway)
    try:
        writer.write(greet_request("last", close=True))
        raw = await asyncio.wait_for(reader.read(), READ_WITHIN)  # to the end of the connection
    finally:
        writer.close()

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b'{"result":{"data":{"hello":"last"}}}'


async def test_an_answer_written_as_the_client_half_closes_still_arrives() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    router = Router()

    @router.query(access=PUBLIC)
    async def gated(ctx: CallContext) -> str:
        entered.set()
        await release.wait()
        return "answered"

    async with running_gateway(Settings(), router) as gateway:
        reader, writer = await open_to(gateway)
        try:
            writer.write(b"GET /trpc/gated HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await asyncio.wait_for(entered.wait(), READ_WITHIN)
            release.set()  # the answer is written in the loop's next pass...
            writer.write_eof()  # ...which also reads this FIN, and asyncio then closes the connection
            raw = await asyncio.wait_for(reader.read(), READ_WITHIN)
        finally:
            writer.close()

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b'{"result":{"data":"answered"}}'


async def test_an_answer_over_the_hold_limit_arrives_whole(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    text = "x" * (3 * HELD_BYTES_LIMIT)
    async with http.post(f"{gateway.trpc_url}/echoMut", json=text) as response:
        assert response.status == 200
        assert await response.json() == {"result": {"data": {"received": text, "wasUndefined": False}}}


async def test_a_stream_of_small_and_large_parts_arrives_whole_and_in_order(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    # v10's stream: one write per call as it ends (small ones held, the large one straight out), joined into one
    # JSON object by its framing.
    inputs = {"0": "small before", "1": "L" * (2 * HELD_BYTES_LIMIT), "2": "small after"}
    async with http.post(
        f"{gateway.trpc_url}/echoMut,echoMut,echoMut?batch=1",
        json=inputs,
        headers={"trpc-batch-mode": "stream"},
    ) as response:
        assert response.status == 200
        answers = json.loads(await response.read())

    assert answers == {
        index: {"result": {"data": {"received": value, "wasUndefined": False}}}
        for index, value in inputs.items()
    }


async def test_a_file_is_sent_whole_after_its_held_head(tmp_path: Path) -> None:
    # The gateway serves no files; this keeps the way open for one (aiohttp's FileResponse on these connections).
    content = bytes(range(256)) * (3 * HELD_BYTES_LIMIT // 256)
    (tmp_path / "file.bin").write_bytes(content)

    async def serve_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(tmp_path / "file.bin")

    app = web.Application()
    app.router.add_get("/file", serve_file)
    runner = GatewayRunner(app, head_timeout=10.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/file") as response:
            assert response.status == 200
            assert await response.read() == content
    finally:
        await runner.cleanup()


async def test_many_connections_at_once_each_get_their_own_answer(gateway: RunningGateway) -> None:
    async def ask(name: str) -> tuple[int, bytes]:
        reader, writer = await open_to(gateway)
        try:
            writer.write(greet_request(name))
            return await read_answer(reader)
        finally:
            writer.close()

    names = [f"client{n}" for n in range(64)]
    answers = await asyncio.gather(*(ask(name) for name in names))

    assert answers == [(200, b'{"result":{"data":{"hello":"%s"}}}' % name.encode()) for name in names]
