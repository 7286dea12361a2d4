"""Builds the aiohttp application: everything a request needs is created here, once."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web
from loguru import logger

from gateway.auth.guard import RATE_LIMITS, RateLimits
from gateway.http.front_door import DIRECT_ROUTE
from gateway.http.hygiene import secure_unobserved
from gateway.http.observe import REQUEST_LOG, request_observer
from gateway.http.protocol import GatewayRunner
from gateway.http.trpc_route import TRPC_PREFIX, TrpcRoute
from gateway.jsonrpc import RPC_PATH, RpcRoute
from gateway.logs import BufferedLog
from gateway.maintenance import MAINTENANCE, MaintenanceSwitch
from gateway.metrics.health import HealthMonitor, HealthWatch
from gateway.metrics.recorder import Metrics
from gateway.metrics.routes import MetricsRoutes
from gateway.payments import PAYMENTS, PaymentService
from gateway.payments.qr_codes import QR_CODES, QrCodes
from gateway.registry import Registry, Router
from gateway.services import Services
from gateway.settings import Settings
from gateway.store import open_store
from gateway.stripe_api import StripeApi
from gateway.trpc.resolver import TrpcResolver
from gateway.webhooks.route import WEBHOOK_PATH, WEBHOOKS, WebhookRoute
from gateway.webhooks.service import WebhookService

__all__ = ["METRICS", "REQUEST_LOG", "SERVICES", "VERSION", "create_app", "gateway_runner", "runner_options"]

SERVICES: Final = web.AppKey("services", Services)
"""What procedures use (the payment service, ...); filled at start-up for the production app."""
METRICS: Final = web.AppKey("metrics", Metrics)
"""This process's figures (`/metrics/payments…`)."""


def _version() -> str:
    try:
        return importlib.metadata.version("trpc-stripe-gateway")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a tree that is not installed
        return "0+unknown"


LINGERING_SECONDS: Final = 2.0
VERSION: Final = _version()
"""The installed package's version (health, `gateway_info`)."""


def create_app(
    settings: Settings, router: Router | None = None, services: Services | None = None
) -> web.Application:
    """The gateway application.

    With no `router`, the production procedures, and (unless `services` are given) the production services: the
    store, the Stripe client and the webhook service, opened at start-up and closed at shutdown. Tests and
    benchmarks pass their own router, and the services it needs, if any.
    """
    opens_payment_services = router is None and services is None
    if router is None:
        from procedures import build_router

        router = build_router()
    services = services if services is not None else Services()
    if RATE_LIMITS not in services:
        services[RATE_LIMITS] = RateLimits(settings)
    registry = Registry(router)
    request_log = BufferedLog(settings.gateway_log_level)
    metrics = Metrics()
    health = HealthMonitor(settings, metrics, version=VERSION)
    observed = request_observer(request_log, metrics, settings)
    app = web.Application(client_max_size=settings.gateway_max_body_bytes)
    app[REQUEST_LOG] = request_log
    app[SERVICES] = services
    app[METRICS] = metrics
    if opens_payment_services:
        app.cleanup_ctx.append(_payment_services(settings, services, metrics, health))
    route = TrpcRoute(TrpcResolver(registry, settings, metrics), services)
    trpc = observed("trpc", route.handle)
    # `[\s\S]*`, not `.*`: a path may hold an encoded newline (`/trpc/%0A`), which still deserves a tRPC answer.
    # The only route under the prefix, so the front door (`gateway_runner`) serves it without the router, which
    # only ever sees the requests with an `Expect` header.
    app.router.add_route("*", TRPC_PREFIX + r"{tail:[\s\S]*}", trpc)
    app[DIRECT_ROUTE] = (TRPC_PREFIX, trpc)
    app.router.add_route(
        "*", RPC_PATH, observed("rpc", RpcRoute(registry, settings, metrics, services).handle)
    )
    app.router.add_route(
        "*", WEBHOOK_PATH, observed("webhooks", WebhookRoute(settings, services, metrics).handle)
    )
    for path, name, handler in MetricsRoutes(settings, metrics, health, VERSION).routes():
        app.router.add_route("GET", path, observed(name, handler))
    # Every route goes through `observed`; this one stays last (it would shadow routes added after it), so that an
    # unknown path is still a 404 with a request id and a log line.
    app.router.add_route("*", r"/{tail:[\s\S]*}", observed("other", _not_found))
    app.on_response_prepare.append(secure_unobserved)  # what no route observed: aiohttp's `Expect` answers
    app.on_cleanup.append(_flush_log)
    return app


def _payment_services(
    settings: Settings, services: Services, metrics: Metrics, health: HealthMonitor
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_and_close(_: web.Application) -> AsyncIterator[None]:
        store = await open_store(settings.database_url)
        if store.applied_migrations:  # an operator rolling out a release wants to see which process migrated
            logger.bind(versions=list(store.applied_migrations)).warning("store_migrated")
        stripe = StripeApi(settings)
        stripe.on_call = metrics.stripe_call
        services[PAYMENTS] = payments = PaymentService(store, stripe, settings, metrics=metrics)
        services[QR_CODES] = QrCodes(payments, store, settings)
        services[WEBHOOKS] = WebhookService(store, settings, metrics)
        services[MAINTENANCE] = health.maintenance = MaintenanceSwitch(store)
        health.store = store
        health_watch = HealthWatch(metrics, stripe.ping, health)
        health_watch.start()
        logger.bind(
            database=settings.database_url.split("://", 1)[0], stripeApi=settings.stripe_api_base or "stripe"
        ).info("payment_services_ready")
        try:
            yield
        finally:
            try:
                await health_watch.stop()
            finally:
                try:
                    await stripe.close()
                finally:
                    await store.close()

    return open_and_close


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


async def _flush_log(app: web.Application) -> None:
    app[REQUEST_LOG].flush()


def runner_options(settings: Settings) -> dict[str, object]:
    """Server options for `AppRunner`: long request lines (8 KB+ batched GET URLs), raw bodies, the idle
    keep-alive timeout."""
    return {
        "keepalive_timeout": settings.gateway_keepalive_timeout,
        # After an answer sent before the whole body arrived (413, a body timeout), aiohttp reads and drops the rest
        # for this long before closing, so that the client gets the answer rather than a reset; its 10 s default
        # would let a slow client hold the connection that much longer.
        "lingering_time": LINGERING_SECONDS,
        "max_line_size": settings.gateway_max_url_bytes,
        "max_field_size": settings.gateway_max_header_bytes,
        # Bodies are read as sent, as @trpc/server reads them: tRPC clients never compress requests, and a server
        # that inflates them can be handed a decompression bomb, or fail inside the parser with a non-tRPC answer.
        "auto_decompress": False,
        "access_log": None,
    }


def gateway_runner(app: web.Application, settings: Settings, **options: object) -> web.AppRunner:
    """The runner that serves `app` as `gateway serve` does: `runner_options`, and the request-head deadline
    (GATEWAY_HEADER_TIMEOUT) on every connection. `options` go to `web.AppRunner` (`shutdown_timeout`, ...)."""
    return GatewayRunner(
        app,
        head_timeout=settings.gateway_header_timeout,
        **runner_options(settings),
        **options,
    )
