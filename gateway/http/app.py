"""Builds the aiohttp application: everything a request needs is created here, once."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.http.observe import add_request_id_header, observe_requests
from gateway.http.trpc_route import TRPC_PREFIX, TrpcRoute
from gateway.registry import Registry, Router
from gateway.settings import Settings
from gateway.trpc.resolver import TrpcResolver

__all__ = ["REGISTRY", "SETTINGS", "create_app", "runner_options"]

SETTINGS: Final = web.AppKey("settings", Settings)
REGISTRY: Final = web.AppKey("registry", Registry)


def create_app(settings: Settings, router: Router | None = None) -> web.Application:
    """The gateway application. `router` defaults to the production procedures; tests pass their own."""
    if router is None:
        from procedures import build_router

        router = build_router()
    registry = Registry(router)
    app = web.Application(middlewares=[observe_requests], client_max_size=settings.gateway_max_body_bytes)
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    route = TrpcRoute(TrpcResolver(registry, settings), settings)
    app.router.add_route("*", TRPC_PREFIX + "{tail:.*}", route.handle)
    app.on_response_prepare.append(add_request_id_header)
    return app


def runner_options(settings: Settings) -> dict[str, object]:
    """Server options for `AppRunner`/`run_app`: long request lines, so 8 KB+ batched GET URLs work."""
    return {
        "max_line_size": settings.gateway_max_url_bytes,
        "max_field_size": settings.gateway_max_header_bytes,
        "access_log": None,
    }
