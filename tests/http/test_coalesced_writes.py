"""Writes held until the end of the event loop's pass (gateway.http.coalesce): nothing lost, nothing reordered.

The transport's rules are checked on real TCP connections on 127.0.0.1 (asyncio's own transports, wrapped); then
the gateway's answers through it: pipelined requests, `Connection: close`, bodies over the hold limit, many
connections at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from gateway.http.coalesce import HELD_BYTES_LIMIT, CoalescingTransport, WriteCoalescer
from tests.support.server import RunningGateway

READ_WITHIN = 10.0
"""Seconds a read may take on a loaded test machine before the test fails rather than hangs."""


@dataclass
class Link:
    """A TCP connection on 127.0.0.1: the sending side's asyncio transport, wrapped, and the receiving side."""

    inner: asyncio.Transport
    coalescing: CoalescingTransport
    received: asyncio.StreamReader

    async def everything(self) -> bytes:
        """All the bytes the receiver gets until the connection ends (a reset ends it too)."""
        chunks: list[bytes] = []
        try:
            while chunk := await asyncio.wait_for(self.received.read(65536), READ_WITHIN):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


@asynccontextmanager
async def link() -> AsyncIterator[Link]:
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inner, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", port)
    try:
        received, receiving_end = await asyncio.wait_for(accepted, READ_WITHIN)
        try:
            coalescer = WriteCoalescer(asyncio.get_running_loop())
            yield Link(inner, coalescer.wrap(inner), received)
        finally:
            receiving_end.close()
    finally:
        inner.abort()
        server.close()
        await server.wait_closed()


async def test_a_passs_writes_are_held_until_it_ends_then_sent_in_order() -> None:
    async with link() as connection:
        connection.coalescing.write(b"first ")
        connection.coalescing.write(bytearray(b"second "))
        connection.coalescing.writelines([b"third ", memoryview(b"fourth")])
        assert connection.coalescing.get_write_buffer_size() == len(b"first second third fourth")
        assert connection.inner.get_write_buffer_size() == 0  # not handed to the socket yet

        await asyncio.sleep(0)  # the pass ends; the next one sends what was held
        assert connection.coalescing.get_write_buffer_size() == 0
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


async def test_what_is_held_for_a_connection_gone_by_the_end_of_the_pass_is_dropped() -> None:
    async with link() as connection:
        connection.coalescing.write(b"too late")
        connection.inner.abort()  # the connection goes away before the pass ends
        await asyncio.sleep(0)

        assert connection.coalescing.get_write_buffer_size() == 0
        assert await connection.everything() == b""


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


async def test_an_answer_over_the_hold_limit_arrives_whole(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    text = "x" * (3 * HELD_BYTES_LIMIT)
    async with http.post(f"{gateway.trpc_url}/echoMut", json=text) as response:
        assert response.status == 200
        assert await response.json() == {"result": {"data": {"received": text, "wasUndefined": False}}}


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
