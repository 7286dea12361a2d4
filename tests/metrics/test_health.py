"""The health verdict: which checks fail (503), which only warn (200, degraded), on a real SQLite store and a clock
the test moves. Stripe is never called by a probe: its check reads what the gateway's own calls taught it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.metrics.health import HealthMonitor, HealthWatch, configuration_problems
from gateway.metrics.recorder import Metrics
from gateway.settings import Settings
from gateway.store import AuditEntry
from gateway.store.sqlite import SqliteStore
from tests.metrics.clock import START, Clock

SETTINGS = Settings(
    stripe_secret_key="sk_test_x", stripe_publishable_key="pk_test_x", stripe_webhook_secret="whsec_x"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "gateway.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(clock)


async def verdict(monitor: HealthMonitor) -> tuple[int, dict[str, Any]]:
    status, body = await monitor.report()
    return status, dict(body)


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


async def test_a_fresh_gateway_is_healthy(store: SqliteStore, metrics: Metrics) -> None:
    status, body = await verdict(HealthMonitor(SETTINGS, metrics, store, version="1.0"))

    assert (status, body["status"], body["stripeMode"], body["version"]) == (200, "healthy", "test", "1.0")
    assert statuses(body) == {
        "store": "pass",
        "stripe": "pass",
        "configuration": "pass",
        "paymentFailureRate": "pass",
        "responseTime": "pass",
        "recentPayment": "pass",
    }
    assert body["timestamp"] == "2024-01-15T09:50:00.000Z"


async def test_an_unreachable_store_is_unhealthy_503(store: SqliteStore, metrics: Metrics) -> None:
    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    await store.close()

    status, body = await verdict(monitor)

    assert (status, body["status"], body["checks"]["store"]["status"]) == (503, "unhealthy", "fail")
    assert body["checks"]["store"]["error"]
    assert monitor.verdicts()["store"] is False  # what the Prometheus gauge shows until the next check


async def test_stripe_errors_in_a_row_warn_without_503_and_an_answer_clears_them(
    store: SqliteStore, metrics: Metrics
) -> None:
    """Stripe out of reach is the same for every replica: a 503 would take them all out of the load balancer and
    stop Stripe's webhooks too. It degrades, and the StripeConsecutiveErrors alert pages."""
    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    for outcome in ("connection", "timeout", "api", "rate_limit", "authentication"):
        metrics.stripe_call("payment_intents.create", outcome, 1.0)

    status, body = await verdict(monitor)

    stripe = body["checks"]["stripe"]
    assert (status, body["status"], stripe["status"], stripe["consecutiveErrors"]) == (
        200,
        "degraded",
        "warn",
        5,
    )
    assert stripe["problem"] == "the last 5 Stripe calls got no answer"
    metrics.stripe_call("payment_intents.create", "card", 0.3)  # a decline is an answer
    assert statuses((await verdict(monitor))[1])["stripe"] == "pass"


async def test_a_busy_store_is_a_warning_and_a_failing_one_a_failure(
    store: SqliteStore, metrics: Metrics, tmp_path: Path
) -> None:
    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    # Another process holds the write lock: a write of ours waits for it (busy_timeout), and the probe's
    # `SELECT 1` waits behind that write on the store's one connection.
    other = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.ensure_future(
            store.set_maintenance(
                True, "x", AuditEntry(action="a", actor="b", request_id=None, order_id=None)
            )
        )
        status, body = await verdict(monitor)
        assert (status, body["checks"]["store"]["status"]) == (200, "warn")
    finally:
        other.execute("ROLLBACK")
        other.close()
    await write


async def test_the_seed_alert_conditions_degrade_without_503(
    store: SqliteStore, metrics: Metrics, clock: Clock
) -> None:
    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    for i in range(20):  # one failure in 20 is the threshold itself, not above it
        metrics.procedure_call(
            "stripe.createPaymentIntent", "mutation", "http", "OK" if i else "BAD_GATEWAY", 0.2
        )
    assert statuses((await verdict(monitor))[1])["paymentFailureRate"] == "pass"
    metrics.procedure_call("stripe.createPaymentIntent", "mutation", "http", "BAD_GATEWAY", 50.0)
    clock.now += 31 * 60  # and no payment succeeded since the start

    status, body = await verdict(monitor)

    assert (status, body["status"]) == (200, "degraded")
    checks = body["checks"]
    assert (checks["paymentFailureRate"]["status"], checks["paymentFailureRate"]["value"]) == (
        "warn",
        "9.52%",
    )
    assert (checks["responseTime"]["status"], checks["responseTime"]["value"]) == ("warn", "2.571s")
    assert (checks["recentPayment"]["status"], checks["recentPayment"]["lastSucceededAt"]) == ("warn", None)
    metrics.payment("succeeded", "eur", 2500)
    assert statuses((await verdict(monitor))[1])["recentPayment"] == "pass"


async def test_the_last_hour_only_counts(store: SqliteStore, metrics: Metrics, clock: Clock) -> None:
    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    metrics.procedure_call("stripe.createPaymentIntent", "mutation", "http", "BAD_GATEWAY", 9.0)
    assert statuses((await verdict(monitor))[1])["paymentFailureRate"] == "warn"
    clock.now += 61 * 60
    metrics.payment("succeeded", "eur", 2500)

    assert (await verdict(monitor))[1]["status"] == "healthy"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"stripe_webhook_secret": ""}, "STRIPE_WEBHOOK_SECRET is empty"),
        ({"stripe_publishable_key": "pk_live_x"}, "not of the same mode"),
        ({"stripe_publishable_key": ""}, "STRIPE_PUBLISHABLE_KEY is empty"),
    ],
)
async def test_a_configuration_that_cannot_take_payments_fails(
    metrics: Metrics, overrides: dict[str, str], problem: str
) -> None:
    settings = msgspec.convert({**_values(), **overrides}, Settings)
    status, body = await verdict(HealthMonitor(settings, metrics, version="1.0"))

    assert status == 503
    [found] = body["checks"]["configuration"]["problems"]
    assert problem in found
    assert "store" not in body["checks"]  # an application without payment services has no store to check
    assert configuration_problems(SETTINGS) == []


def _values() -> dict[str, str]:
    return {
        "stripe_secret_key": SETTINGS.stripe_secret_key,
        "stripe_publishable_key": SETTINGS.stripe_publishable_key,
        "stripe_webhook_secret": SETTINGS.stripe_webhook_secret,
    }


async def test_the_stripe_watch_calls_stripe_only_when_the_gateway_has_not(
    metrics: Metrics, clock: Clock
) -> None:
    pings: list[float] = []

    async def ping() -> None:
        pings.append(clock.now)
        metrics.stripe_call("payment_intents.list", "ok", 0.1)

    watch = HealthWatch(metrics, ping, interval=0.0)  # no monitor: the store is not checked here
    await watch.tick()
    assert pings == [START]  # never called before: asks once
    await watch.tick()
    assert pings == [START]  # just called
    clock.now += 61
    await watch.tick()
    assert pings == [START, START + 61]
    metrics.stripe_call("payment_intents.create", "ok", 0.2)  # a real call: no need to ask
    clock.now += 30
    await watch.tick()
    assert len(pings) == 2


async def test_the_watch_checks_the_store_so_a_scrape_can_report_it(
    store: SqliteStore, metrics: Metrics
) -> None:
    async def ping() -> None:
        metrics.stripe_call("payment_intents.list", "ok", 0.1)

    monitor = HealthMonitor(SETTINGS, metrics, store, version="1.0")
    watch = HealthWatch(metrics, ping, monitor, interval=0.0)
    assert "store" not in monitor.verdicts()  # never checked yet: not claimed either way

    await watch.tick()
    assert monitor.verdicts()["store"] is True
    await store.close()
    await watch.tick()
    assert monitor.verdicts() == {
        "store": False,
        "stripe": True,
        "configuration": True,
        "paymentFailureRate": True,
        "responseTime": True,
        "recentPayment": True,
    }


async def test_the_watch_outlives_a_bug_and_stops_cleanly(metrics: Metrics) -> None:
    """An exception that is not an outage (a bug) is logged, and the watch goes on; stop() ends it quietly."""
    pings: list[int] = []
    second = asyncio.Event()

    async def broken_ping() -> None:
        pings.append(len(pings))
        if len(pings) >= 2:
            second.set()
        raise RuntimeError("a bug")

    class BrokenMonitor(HealthMonitor):
        async def check_store(self) -> None:
            raise RuntimeError("another bug")

    monitor = BrokenMonitor(SETTINGS, metrics, version="1.0")
    watch = HealthWatch(metrics, broken_ping, monitor, interval=0.0)
    watch.start()
    await asyncio.wait_for(second.wait(), 5)  # it went round again after the first tick's bugs
    await watch.stop()
    assert len(pings) >= 2
