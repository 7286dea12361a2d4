"""A gateway on a real port, served from its own event loop in a background thread, and an HTTP client with its
own event loop in the calling thread: for Hypothesis tests, whose examples are synchronous calls.

Hypothesis calls a synchronous test body once per example. Serving from a thread lets one server (and one store)
live for a whole module, across every example, while each example is a real HTTP exchange made from the test's
thread. The client's deadline (`asyncio.timeout`) runs on the client's loop, not the server's, so it fires even if a
request wedges the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from gateway.registry import Router
from gateway.services import Services
from gateway.settings import Settings
from tests.support.server import running_gateway

__all__ = ["Answer", "HttpClient", "ServicesFactory", "ThreadedGateway", "threaded_gateway"]

T = TypeVar("T")
START_TIMEOUT_S: Final = 15.0

ServicesFactory = Callable[[], AbstractAsyncContextManager[Services]]
"""Opens the services on the server's loop (a store is bound to the loop it was opened on) and closes them."""


@dataclass
class ThreadedGateway:
    base_url: str
    """`http://127.0.0.1:<port>`"""
    app: web.Application
    loop: asyncio.AbstractEventLoop
    """The server's loop, in its own thread."""

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coroutine` on the server's loop (to reach objects bound to it, a store say) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextlib.contextmanager
def threaded_gateway(
    settings: Settings, router: Router | None = None, services: ServicesFactory | None = None
) -> Iterator[ThreadedGateway]:
    """`running_gateway(settings, router, services)` served from a background thread until the block ends."""
    started: queue.Queue[tuple[ThreadedGateway, asyncio.Event] | BaseException] = queue.Queue()

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                opened = await stack.enter_async_context(services()) if services is not None else None
                running = await stack.enter_async_context(running_gateway(settings, router, opened))
                gateway = ThreadedGateway(running.base_url, running.app, asyncio.get_running_loop())
                started.put((gateway, stop))
                await stop.wait()
        except BaseException as error:  # handed to the test's thread, which raises it
            started.put(error)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="threaded-gateway", daemon=True)
    thread.start()
    first = started.get(timeout=START_TIMEOUT_S)
    if isinstance(first, BaseException):
        raise first
    gateway, stop = first
    try:
        yield gateway
    finally:
        gateway.loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=START_TIMEOUT_S)
        assert not thread.is_alive(), "the gateway did not stop"
        with contextlib.suppress(queue.Empty):
            late = started.get_nowait()  # an error while shutting down
            if isinstance(late, BaseException):
                raise late


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class HttpClient:
    """An aiohttp session on its own event loop, driven from synchronous code. Every request must be answered in
    full within `deadline_s` (an `asyncio.timeout` around sending and reading), else the test fails: a hang."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._loop = asyncio.new_event_loop()
        self._session = self._loop.run_until_complete(self._open())

    @staticmethod
    async def _open() -> aiohttp.ClientSession:
        # No client-side timeout of aiohttp's own: the deadline below is the only one, so that it is the one that
        # reports a hang. Bodies are read as sent (no decompression), as a test wants to see them.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        chunked: bool = False,
        skip_auto_headers: tuple[str, ...] = (),
    ) -> Answer:
        """Send one request and read its whole answer. `chunked`: send the body with no Content-Length, in chunks."""
        return self._loop.run_until_complete(
            self._request(method, url, headers or {}, body, chunked, skip_auto_headers)
        )

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        chunked: bool,
        skip_auto_headers: tuple[str, ...],
    ) -> Answer:
        data: bytes | AsyncIterator[bytes] | None = body
        if chunked and body is not None:
            data = _chunks(body)
        try:
            async with asyncio.timeout(self.deadline_s):
                async with self._session.request(
                    method, url, headers=headers, data=data, skip_auto_headers=skip_auto_headers
                ) as response:
                    return Answer(response.status, response.headers, await response.read())
        except TimeoutError:
            pytest.fail(f"no complete answer within {self.deadline_s} s: {method} {url}")

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._session.close())
        finally:
            self._loop.close()


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]
