"""`GET /metrics/payments/health`: is this gateway fit to take payments, and what needs a look.

Each check is `pass`, `warn` or `fail`. Any `fail` makes the gateway `unhealthy`, answered 503 so a load balancer
takes this replica out: its store fails, or its configuration cannot work. A `warn` makes it `degraded`, still
200: Stripe not answering, a busy store, maintenance, and the seed's alert conditions (failure rate, slow payments,
no payment for 30 minutes) are for a person to look at; taking replicas out would not fix them.

Cheap enough to poll every second: the store check is one `SELECT 1`; Stripe is never called by a probe. What is
known of Stripe comes from the gateway's own calls, and from `HealthWatch`, which asks Stripe something cheap when
no call has been made for a while. `HealthWatch` also checks the store every 15 s, so that a Prometheus scrape can
report every check (`gateway_health_check_status`) without doing any I/O itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from loguru import logger

from gateway.codec import epoch_iso
from gateway.maintenance import MaintenanceSwitch
from gateway.metrics.recorder import Metrics, PaymentTotals
from gateway.settings import Settings
from gateway.store import Maintenance, Store, StoreError

__all__ = ["HealthMonitor", "HealthWatch", "configuration_problems"]

Status = Literal["pass", "warn", "fail"]

STORE_TIMEOUT: Final = 1.0
FAILURE_RATE_THRESHOLD: Final = 0.05
RESPONSE_TIME_THRESHOLD: Final = 2.0
NO_PAYMENT_THRESHOLD: Final = 30 * 60
STRIPE_ERRORS_IN_A_ROW: Final = 5
STRIPE_PING_TIMEOUT: Final = 10.0
"""The background Stripe call gives up after this (the client's own retries could take a minute)."""
STRIPE_IDLE_SECONDS: Final = 60.0
"""With no Stripe call for this long, `HealthWatch` makes one, so the health's Stripe figure stays current."""


def configuration_problems(settings: Settings) -> list[str]:
    """What in the running configuration stops payments from working (the start-up checks refuse the worst)."""
    problems = []
    secret, publishable = settings.stripe_secret_key, settings.stripe_publishable_key
    if not secret:
        problems.append("STRIPE_SECRET_KEY is empty")
    if not publishable:
        problems.append("STRIPE_PUBLISHABLE_KEY is empty: the app cannot start the PaymentSheet")
    elif secret and publishable.startswith("pk_live_") == settings.stripe_test_mode:
        problems.append("STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY are not of the same mode (live/test)")
    if not settings.stripe_webhook_secret:
        problems.append("STRIPE_WEBHOOK_SECRET is empty: no webhook can be verified, no payment confirmed")
    return problems


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    details: dict[str, object]

    def as_json(self) -> dict[str, object]:
        return {"status": self.status, **self.details}


class HealthWatch:
    """Keeps what the health knows current between probes, so that neither a probe nor a scrape waits on Stripe
    and a scrape waits on nothing: every `interval` seconds, the store is checked, and if the gateway made no Stripe
    call for STRIPE_IDLE_SECONDS, one cheap call is made (which `Metrics` records like any other)."""

    def __init__(
        self,
        metrics: Metrics,
        ping_stripe: Callable[[], Awaitable[None]],
        monitor: HealthMonitor | None = None,
        interval: float = 15.0,
    ) -> None:
        self._metrics = metrics
        self._ping = ping_stripe
        self._monitor = monitor
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="health-watch")

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended (it never raises: see `_run`)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def tick(self) -> None:
        """Check the store; ask Stripe, unless the gateway did recently. The two run side by side, so a Stripe
        call that hangs (up to STRIPE_PING_TIMEOUT) never makes the store's verdict stale."""
        # return_exceptions: both always finish (no check left running on its own), and a cancellation of the
        # watch reaches both and comes out of here as one.
        for outcome in await asyncio.gather(
            self._check_store(), self._check_stripe(), return_exceptions=True
        ):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _check_store(self) -> None:
        if self._monitor is not None:
            await self._monitor.check_store()

    async def _check_stripe(self) -> None:
        last = self._metrics.last_stripe_call_at
        if last is not None and self._metrics.now() - last < STRIPE_IDLE_SECONDS:
            return
        try:
            await asyncio.wait_for(self._ping(), STRIPE_PING_TIMEOUT)
        except Exception as error:  # the outcome is recorded by Metrics, through the Stripe client's hook
            logger.bind(error=type(error).__name__).debug("stripe_watch_failed")

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except (
                Exception
            ) as error:  # a bug, not an outage (those are verdicts): keep watching, say it once
                logger.opt(exception=error).error("health_watch_failed")
            await asyncio.sleep(self._interval)


async def _check_store(store: Store) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(store.ping(), STORE_TIMEOUT)
    except TimeoutError:
        # Busy (queued behind writes, or another process holding the write lock), not gone: a warning, or every
        # replica would leave the load balancer at the first burst of writes.
        return Check("warn", {"error": f"no answer within {STORE_TIMEOUT:g} s (busy?)"})
    except StoreError as error:
        return Check("fail", {"error": str(error)})
    return Check("pass", {"durationSeconds": f"{time.perf_counter() - started:.3f}"})


class HealthMonitor:
    """Runs the checks. `store` is None for an application without payment services (tests, benchmarks)."""

    def __init__(
        self, settings: Settings, metrics: Metrics, store: Store | None = None, *, version: str
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self.store = store
        self.maintenance: MaintenanceSwitch | None = None
        """The maintenance switch, when the application has one (set with the store)."""
        self._version = version
        self._store_check: Check | None = None
        """The store's last check (by a probe, or by HealthWatch in the background)."""

    async def check_store(self) -> None:
        """Ping the store and read the maintenance switch now (the only checks that do I/O)."""
        if self.store is not None:
            self._store_check = await _check_store(self.store)
        if self.maintenance is not None:
            with contextlib.suppress(StoreError):  # the store check just said so
                await self.maintenance.current()

    def checks(self) -> dict[str, Check]:
        """Every check, from what is in memory (the store's as last checked)."""
        checks: dict[str, Check] = {}
        if self.store is not None:
            if self._store_check is not None:
                checks["store"] = self._store_check
            checks["stripe"] = self._stripe_check()
        checks["configuration"] = self._configuration_check()
        if self.maintenance is not None and (switch := self.maintenance.last_known) is not None:
            checks["maintenance"] = self._maintenance_check(switch)
        last_hour = self._metrics.payment_totals(last_hour=True)
        checks["paymentFailureRate"] = self._failure_rate_check(last_hour)
        checks["responseTime"] = self._response_time_check(last_hour)
        checks["recentPayment"] = self._recent_payment_check()
        return checks

    def verdicts(self) -> dict[str, bool]:
        """Each check: True unless it fails. For the Prometheus gauge: no I/O."""
        return {name: check.status != "fail" for name, check in self.checks().items()}

    async def report(self) -> tuple[int, dict[str, object]]:
        """(HTTP status, body): 200 healthy or degraded, 503 unhealthy. Checks the store now."""
        metrics = self._metrics
        await self.check_store()
        checks = self.checks()
        statuses = {check.status for check in checks.values()}
        overall = "unhealthy" if "fail" in statuses else "degraded" if "warn" in statuses else "healthy"
        now = metrics.now()
        body: dict[str, object] = {
            "status": overall,
            "timestamp": epoch_iso(now),
            "uptimeSeconds": round(now - metrics.started_at, 3),
            "version": self._version,
            "stripeMode": "test" if self._settings.stripe_test_mode else "live",
            "checks": {name: check.as_json() for name, check in checks.items()},
        }
        return (503 if overall == "unhealthy" else 200), body

    def _stripe_check(self) -> Check:
        metrics = self._metrics
        errors = metrics.stripe_consecutive_errors
        details: dict[str, object] = {
            "consecutiveErrors": errors,
            "lastSuccessAt": epoch_iso(metrics.last_stripe_ok_at) if metrics.last_stripe_ok_at else None,
            "lastCallAt": epoch_iso(metrics.last_stripe_call_at) if metrics.last_stripe_call_at else None,
        }
        if errors >= STRIPE_ERRORS_IN_A_ROW:
            details["problem"] = f"the last {errors} Stripe calls got no answer"
        # A warning, never a failure: Stripe out of reach is the same for every replica, and a 503 on all of them
        # would also stop Stripe's webhooks and the status queries (the StripeConsecutiveErrors alert pages).
        return Check("warn" if errors else "pass", details)

    @staticmethod
    def _maintenance_check(switch: Maintenance) -> Check:
        if not switch.enabled:
            return Check("pass", {"enabled": False})
        # On purpose, so not a failure (a 503 would take every replica out and stop the webhooks too).
        return Check(
            "warn",
            {"enabled": True, "message": switch.message, "since": switch.changed_at, "by": switch.changed_by},
        )

    def _configuration_check(self) -> Check:
        problems = configuration_problems(self._settings)
        return Check("fail" if problems else "pass", {"problems": problems})

    @staticmethod
    def _failure_rate_check(last_hour: PaymentTotals) -> Check:
        total, success, _ = last_hour
        rate = (total - success) / total if total else 0.0
        details: dict[str, object] = {
            "value": f"{100 * rate:.2f}%",
            "threshold": f"{100 * FAILURE_RATE_THRESHOLD:.2f}%",
            "window": "1h",
            "payments": total,
        }
        return Check("warn" if rate > FAILURE_RATE_THRESHOLD else "pass", details)

    @staticmethod
    def _response_time_check(last_hour: PaymentTotals) -> Check:
        total, _, seconds = last_hour
        mean = seconds / total if total else 0.0
        details: dict[str, object] = {
            "value": f"{mean:.3f}s",
            "threshold": f"{RESPONSE_TIME_THRESHOLD:.3f}s",
            "window": "1h",
        }
        return Check("warn" if mean > RESPONSE_TIME_THRESHOLD else "pass", details)

    def _recent_payment_check(self) -> Check:
        metrics = self._metrics
        # Counted from the process start until a payment succeeds: a restart is not a 30-minute silence.
        last = metrics.last_payment_succeeded_at
        idle = metrics.now() - (last if last is not None else metrics.started_at)
        details: dict[str, object] = {
            "lastSucceededAt": epoch_iso(last) if last is not None else None,
            "threshold": f"{NO_PAYMENT_THRESHOLD}s",
        }
        return Check("warn" if idle > NO_PAYMENT_THRESHOLD else "pass", details)
