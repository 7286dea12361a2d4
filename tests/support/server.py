"""A gateway on a real socket on 127.0.0.1, as tests and the Node clients talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from gateway.http.app import create_app, gateway_runner
from gateway.registry import Router
from gateway.services import Services
from gateway.settings import Settings


@dataclass
class RunningGateway:
    base_url: str
    """`http://127.0.0.1:<port>`"""
    app: web.Application
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path with query) of every request received, in order: lets tests count HTTP round trips."""

    @property
    def trpc_url(self) -> str:
        return self.base_url + "/trpc"


@asynccontextmanager
async def running_gateway(
    settings: Settings, router: Router | None = None, services: Services | None = None
) -> AsyncIterator[RunningGateway]:
    """The gateway on a free port: `create_app(settings, router, services)` (all None: the production app)."""
    app = create_app(settings, router, services)
    requests: list[tuple[str, str]] = []

    runner = gateway_runner(app, settings)
    await runner.setup()
    assert runner.server is not None
    handle = runner.server.request_handler

    async def record(request: web.BaseRequest) -> web.StreamResponse:
        requests.append((request.method, request.raw_path))
        return await handle(request)

    runner.server.request_handler = record  # before the first connection: each takes the handler it finds
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield RunningGateway(f"http://127.0.0.1:{port}", app, requests)
    finally:
        await runner.cleanup()
