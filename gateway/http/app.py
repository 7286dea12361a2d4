"""Builds the aiohttp application: everything a request needs is created here, once."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.http.observe import request_observer
from gateway.http.trpc_route import TRPC_PREFIX, TrpcRoute
from gateway.logs import BufferedLog
from gateway.registry import Registry, Router
from gateway.settings import Settings
from gateway.trpc.resolver import TrpcResolver

__all__ = ["REQUEST_LOG", "create_app", "runner_options"]

REQUEST_LOG: Final = web.AppKey("request_log", BufferedLog)


def create_app(settings: Settings, router: Router | None = None) -> web.Application:
    """The gateway application. `router` defaults to the production procedures; tests pass their own."""
    if router is None:
        from procedures import build_router

        router = build_router()
    registry = Registry(router)
    request_log = BufferedLog(settings.gateway_log_level)
    observed = request_observer(request_log)
    app = web.Application(client_max_size=settings.gateway_max_body_bytes)
    app[REQUEST_LOG] = request_log
    route = TrpcRoute(TrpcResolver(registry, settings))
    # `[\s\S]*`, not `.*`: a path may hold an encoded newline (`/trpc/%0A`), which still deserves a tRPC answer.
    app.router.add_route("*", TRPC_PREFIX + r"{tail:[\s\S]*}", observed(route.handle))
    # Every route goes through `observed`; this one stays last (it would shadow routes added after it), so that an
    # unknown path is still a 404 with a request id and a log line.
    app.router.add_route("*", r"/{tail:[\s\S]*}", observed(_not_found))
    app.on_cleanup.append(_flush_log)
    return app


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


async def _flush_log(app: web.Application) -> None:
    app[REQUEST_LOG].flush()


def runner_options(settings: Settings) -> dict[str, object]:
    """Server options for `AppRunner`/`run_app`: long request lines (8 KB+ batched GET URLs), raw bodies."""
    return {
        "max_line_size": settings.gateway_max_url_bytes,
        "max_field_size": settings.gateway_max_header_bytes,
        # Bodies are read as sent, as @trpc/server reads them: tRPC clients never compress requests, and a server
        # that inflates them can be handed a decompression bomb, or fail inside the parser with a non-tRPC answer.
        "auto_decompress": False,
        "access_log": None,
    }
