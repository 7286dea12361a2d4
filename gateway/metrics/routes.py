"""The four metrics endpoints of the seed: `/metrics/payments` (summary), `/detailed`, `/prometheus`, `/health`."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import codec
from gateway.metrics.health import HealthMonitor
from gateway.metrics.prometheus import CONTENT_TYPE, exposition
from gateway.metrics.recorder import Metrics
from gateway.metrics.reports import detailed_report, payment_summary
from gateway.settings import Settings

__all__ = ["METRICS_PREFIX", "MetricsRoutes"]

METRICS_PREFIX: Final = "/metrics/payments"
_NO_STORE: Final = {"cache-control": "no-store"}


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=codec.encode(body), content_type="application/json", headers=_NO_STORE
    )


class MetricsRoutes:
    def __init__(self, settings: Settings, metrics: Metrics, health: HealthMonitor, version: str) -> None:
        self._metrics = metrics
        self._health = health
        self._version = version
        self._stripe_mode = "test" if settings.stripe_test_mode else "live"

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(path, route name for the request metrics, handler): probes are told apart from scrapes."""
        return [
            (METRICS_PREFIX, "metrics", self.summary),
            (f"{METRICS_PREFIX}/detailed", "metrics", self.detailed),
            (f"{METRICS_PREFIX}/prometheus", "metrics", self.prometheus),
            (f"{METRICS_PREFIX}/health", "health", self.health),
        ]

    async def summary(self, _: web.Request) -> web.StreamResponse:
        return _json(payment_summary(self._metrics))

    async def detailed(self, _: web.Request) -> web.StreamResponse:
        return _json(detailed_report(self._metrics))

    async def prometheus(self, _: web.Request) -> web.StreamResponse:
        switch = self._health.maintenance.last_known if self._health.maintenance is not None else None
        body = exposition(
            self._metrics,
            self._health.verdicts(),
            version=self._version,
            stripe_mode=self._stripe_mode,
            maintenance=switch.enabled if switch is not None else None,
        )
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE, **_NO_STORE})

    async def health(self, _: web.Request) -> web.StreamResponse:
        status, body = await self._health.report()
        return _json(body, status)
