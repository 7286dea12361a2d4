"""PaymentService's crash windows: a store write fails right after a Stripe call succeeded.

Nothing may be lost and no Stripe object may be made twice: a retry of the same call must find what Stripe already
did (through the idempotency keys derived from the order row) and complete the store, never make a second
PaymentIntent or Customer. Such a fault cannot be provoked from outside (SQLite on a local file does not fail on
demand between a Stripe call and the next statement), so it is injected: `FlakyStore` is a real SqliteStore on a
temp file that raises StoreUnavailable once, on the Nth call of one method. `before` means the write never reached
the database (the transaction failed); `after` that it was committed but the caller saw an error anyway (the
answer was lost). Stripe is the local emulator, reached over HTTP as Stripe itself would be.

The last test runs two gateway processes on one SQLite file and one emulator, racing for one order.

Refunds have their own crash windows in test_refund_outcomes.py.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec
import pytest
import stripe

from gateway.payments import Actor, PaymentService, user_actor
from gateway.store import Order, PaymentStatus, StoreUnavailable
from gateway.store.sqlite import SqliteStore
from gateway.stripe_api import StripeApi
from schemas.stripe import (
    CancelPaymentIntentResult,
    CreatePaymentIntentInput,
    CustomerInput,
    PaymentIntentResult,
)
from tests.support.flaky_store import FaultTiming, FlakyStore
from tests.support.payment_worker import READY, WorkerReport, gateway_settings
from tests.support.stripe_emulator import REPO_ROOT, StripeEmulator

TIMINGS: tuple[FaultTiming, ...] = ("before", "after")
ACTOR = Actor(user_actor("crash"), "req_crash")
WORKER_TIMEOUT = 60.0
"""Seconds a worker process may take to start or to finish (a bound for a hang, not a wait)."""


# -- the service against the emulator ----------------------------------------------------------------------------


class StripeIntent(NamedTuple):
    id: str
    status: str
    amount: int


@dataclass
class Payments:
    service: PaymentService
    store: FlakyStore
    sdk: stripe.StripeClient

    async def create(
        self, order_id: str, amount: int = 2500, customer: CustomerInput | None = None
    ) -> PaymentIntentResult:
        request = CreatePaymentIntentInput(
            order_id=order_id, amount=amount, currency="eur", customer=customer
        )
        return await self.service.create_payment_intent(request, ACTOR)

    async def cancel(self, order_id: str) -> CancelPaymentIntentResult:
        return await self.service.cancel(order_id, ACTOR)

    async def order(self, order_id: str) -> Order:
        order = await self.store.inner.get_order(order_id)
        assert order is not None
        return order

    async def actions(self, order_id: str) -> list[str]:
        """The order's audit trail, oldest first."""
        return [entry.action for entry in reversed(await self.store.inner.list_audit(order_id))]

    async def intents_at_stripe(self, order_id: str) -> list[StripeIntent]:
        return await intents_at_stripe(self.sdk, order_id)

    async def customers_at_stripe(self, email: str) -> list[str]:
        listed = await self.sdk.v1.customers.list_async({"limit": 100})
        return [customer.id for customer in listed.data if customer.email == email]


@asynccontextmanager
async def stripe_sdk(emulator: StripeEmulator) -> AsyncIterator[stripe.StripeClient]:
    """The Stripe SDK on the emulator, to see what Stripe holds independently of the gateway."""
    http = stripe.AIOHTTPClient(timeout=10)
    try:
        yield stripe.StripeClient(
            emulator.secret_key,
            http_client=http,
            base_addresses={"api": emulator.api_base},
            max_network_retries=0,
        )
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


async def intents_at_stripe(sdk: stripe.StripeClient, order_id: str) -> list[StripeIntent]:
    """Every PaymentIntent Stripe holds for the order (by `metadata.order_id`), oldest first."""
    listed = await sdk.v1.payment_intents.list_async({"limit": 100})
    intents = [
        StripeIntent(pi.id, pi.status, int(pi.amount))
        for pi in listed.data
        if pi.metadata.to_dict().get("order_id") == order_id
    ]
    return intents[::-1]  # Stripe lists newest first


@pytest.fixture
async def payments(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Payments]:
    """A PaymentService as `gateway.http.app` builds it, on a FlakyStore over a real SQLite file."""
    database = tmp_path / "gateway.sqlite3"
    settings = gateway_settings(
        api_base=fresh_stripe_emulator.api_base,
        secret_key=fresh_stripe_emulator.secret_key,
        publishable_key=fresh_stripe_emulator.publishable_key,
        database=database,
    )
    store = FlakyStore(await SqliteStore.open(database))
    stripe_api = StripeApi(settings)
    try:
        async with stripe_sdk(fresh_stripe_emulator) as sdk:
            yield Payments(PaymentService(store, stripe_api, settings), store, sdk)
    finally:
        await stripe_api.close()
        await store.inner.close()


async def fails_with_injected_fault(payments: Payments, call: Callable[[], Awaitable[object]]) -> None:
    """`call` fails with the injected fault, and that fault is the one that fired (not some other failure)."""
    with pytest.raises(StoreUnavailable, match="injected fault"):
        await call()
    assert len(payments.store.faults_raised) == 1, payments.store.faults_raised


# -- createPaymentIntent -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
async def test_create_retried_after_an_injected_store_fault_returns_the_one_payment_intent(
    payments: Payments, timing: FaultTiming
) -> None:
    payments.store.inject_fault("update_order", on_call=1, timing=timing)  # recording the new intent

    await fails_with_injected_fault(payments, lambda: payments.create("order-1"))

    [made] = await payments.intents_at_stripe("order-1")  # Stripe did create it: this is the crash window
    if timing == "before":
        stranded = await payments.order("order-1")
        assert (stranded.status, stranded.payment_intent_id) == (PaymentStatus.CREATING, None)

    retried = await payments.create("order-1")
    again = await payments.create("order-1")

    assert retried.payment_intent_id == made.id
    assert (again.payment_intent_id, again.client_secret) == (
        retried.payment_intent_id,
        retried.client_secret,
    )
    assert retried.client_secret.startswith(made.id + "_secret")
    assert (retried.amount, retried.status) == (2500, "requires_payment_method")
    assert await payments.intents_at_stripe("order-1") == [
        StripeIntent(made.id, "requires_payment_method", 2500)
    ]
    order = await payments.order("order-1")
    assert (order.payment_intent_id, order.status, order.amount) == (
        made.id,
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        2500,
    )
    assert [i.id for i in await payments.store.inner.list_payment_intents("order-1")] == [made.id]
    assert await payments.actions("order-1") == ["order.created", "payment_intent.created"]


async def test_create_retried_with_another_amount_after_an_injected_store_fault_updates_the_one_intent(
    payments: Payments,
) -> None:
    """The retry resends Stripe the first request (the row's amount, under the same key), then updates it."""
    payments.store.inject_fault("update_order", on_call=1)
    await fails_with_injected_fault(payments, lambda: payments.create("order-1b", 1000))
    [made] = await payments.intents_at_stripe("order-1b")

    retried = await payments.create("order-1b", 1800)

    assert (retried.payment_intent_id, retried.amount) == (made.id, 1800)
    assert await payments.intents_at_stripe("order-1b") == [
        StripeIntent(made.id, "requires_payment_method", 1800)
    ]
    order = await payments.order("order-1b")
    assert (order.payment_intent_id, order.amount) == (made.id, 1800)


async def test_create_retried_after_an_injected_fault_on_the_customer_write_reuses_the_stripe_customer(
    payments: Payments,
) -> None:
    customer = CustomerInput(email="ann@example.com", name="Ann")
    payments.store.inject_fault("add_customer", on_call=1)  # recording the new Stripe Customer

    await fails_with_injected_fault(payments, lambda: payments.create("order-c", customer=customer))

    [made] = await payments.customers_at_stripe("ann@example.com")
    retried = await payments.create("order-c", customer=customer)

    assert retried.customer_id == made
    assert retried.ephemeral_key is not None
    assert await payments.customers_at_stripe("ann@example.com") == [made]
    [intent] = await payments.intents_at_stripe("order-c")
    assert intent.id == retried.payment_intent_id
    assert (await payments.order("order-c")).customer_id == made


async def test_create_retried_with_another_name_after_an_injected_fault_on_the_customer_write_reuses_the_customer(
    payments: Payments,
) -> None:
    payments.store.inject_fault("add_customer", on_call=1)
    await fails_with_injected_fault(
        payments,
        lambda: payments.create("order-c2", customer=CustomerInput(email="bea@example.com", name="Bea")),
    )
    [made] = await payments.customers_at_stripe("bea@example.com")

    # The buyer corrects their name in the form and pays again, as they would after any SERVICE_UNAVAILABLE.
    retried = await payments.create(
        "order-c2", customer=CustomerInput(email="bea@example.com", name="Bea Roy")
    )

    assert retried.customer_id == made
    assert await payments.customers_at_stripe("bea@example.com") == [made]


# -- a changed amount --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
async def test_amount_change_retried_after_an_injected_store_fault_updates_the_one_intent(
    payments: Payments, timing: FaultTiming
) -> None:
    first = await payments.create("order-2", 1000)
    payments.store.inject_fault("update_order", on_call=1, timing=timing)  # recording Stripe's update

    await fails_with_injected_fault(payments, lambda: payments.create("order-2", 1800))

    assert await payments.intents_at_stripe("order-2") == [
        StripeIntent(first.payment_intent_id, "requires_payment_method", 1800)
    ]
    if timing == "before":
        assert (await payments.order("order-2")).amount == 1000

    retried = await payments.create("order-2", 1800)

    assert (retried.payment_intent_id, retried.client_secret) == (
        first.payment_intent_id,
        first.client_secret,
    )
    assert retried.amount == 1800
    assert await payments.intents_at_stripe("order-2") == [
        StripeIntent(first.payment_intent_id, "requires_payment_method", 1800)
    ]
    order = await payments.order("order-2")
    assert (order.payment_intent_id, order.status, order.amount) == (
        first.payment_intent_id,
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        1800,
    )
    [recorded] = await payments.store.inner.list_payment_intents("order-2")
    assert (recorded.id, recorded.amount) == (first.payment_intent_id, 1800)
    assert (await payments.actions("order-2")).count("order.amount_changed") == 1


async def test_going_back_to_the_old_amount_after_an_injected_fault_on_the_update_brings_stripe_back(
    payments: Payments,
) -> None:
    """The lost write left the row at 1000 while Stripe is at 1800: a call for 1000 must not trust the row."""
    first = await payments.create("order-3", 1000)
    payments.store.inject_fault("update_order", on_call=1)
    await fails_with_injected_fault(payments, lambda: payments.create("order-3", 1800))

    back = await payments.create("order-3", 1000)

    assert (back.payment_intent_id, back.amount) == (first.payment_intent_id, 1000)
    assert await payments.intents_at_stripe("order-3") == [
        StripeIntent(first.payment_intent_id, "requires_payment_method", 1000)
    ]
    assert (await payments.order("order-3")).amount == 1000


# -- cancel ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
async def test_cancel_retried_after_an_injected_store_fault_answers_canceled_and_create_reopens(
    payments: Payments, timing: FaultTiming
) -> None:
    first = await payments.create("order-4")
    payments.store.inject_fault("update_order", on_call=1, timing=timing)  # recording Stripe's cancel

    await fails_with_injected_fault(payments, lambda: payments.cancel("order-4"))

    assert await payments.intents_at_stripe("order-4") == [
        StripeIntent(first.payment_intent_id, "canceled", 2500)
    ]
    if timing == "before":
        assert (await payments.order("order-4")).status is PaymentStatus.REQUIRES_PAYMENT_METHOD

    retried = await payments.cancel("order-4")

    assert retried.status == "canceled"
    assert (await payments.order("order-4")).status is PaymentStatus.CANCELED
    assert (await payments.actions("order-4")).count("payment_intent.canceled") == 1

    reopened = await payments.create("order-4")

    assert reopened.payment_intent_id != first.payment_intent_id
    assert reopened.status == "requires_payment_method"
    assert await payments.intents_at_stripe("order-4") == [
        StripeIntent(first.payment_intent_id, "canceled", 2500),
        StripeIntent(reopened.payment_intent_id, "requires_payment_method", 2500),
    ]
    order = await payments.order("order-4")
    assert (order.payment_intent_id, order.status, order.attempt) == (
        reopened.payment_intent_id,
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        2,
    )
    assert [i.id for i in await payments.store.inner.list_payment_intents("order-4")] == [
        first.payment_intent_id,
        reopened.payment_intent_id,
    ]


async def test_create_after_a_cancel_whose_store_write_was_injected_to_fail_reopens_with_a_new_intent(
    payments: Payments,
) -> None:
    """The row still says requires_payment_method, Stripe says canceled: the app must not get the dead intent."""
    first = await payments.create("order-5")
    payments.store.inject_fault("update_order", on_call=1)
    await fails_with_injected_fault(payments, lambda: payments.cancel("order-5"))

    reopened = await payments.create("order-5")

    assert reopened.payment_intent_id != first.payment_intent_id
    assert reopened.status == "requires_payment_method"
    assert await payments.intents_at_stripe("order-5") == [
        StripeIntent(first.payment_intent_id, "canceled", 2500),
        StripeIntent(reopened.payment_intent_id, "requires_payment_method", 2500),
    ]
    order = await payments.order("order-5")
    assert (order.payment_intent_id, order.status) == (
        reopened.payment_intent_id,
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
    )


async def test_reopening_create_retried_after_an_injected_store_fault_makes_one_new_intent(
    payments: Payments,
) -> None:
    first = await payments.create("order-6")
    await payments.cancel("order-6")
    # The reopening create writes twice: the reopened row (attempt 2), then the new intent Stripe made.
    payments.store.inject_fault("update_order", on_call=2)

    await fails_with_injected_fault(payments, lambda: payments.create("order-6"))
    assert payments.store.faults_raised == ["update_order#2"]

    [_, made] = await payments.intents_at_stripe("order-6")
    retried = await payments.create("order-6")

    assert retried.payment_intent_id == made.id != first.payment_intent_id
    assert await payments.intents_at_stripe("order-6") == [
        StripeIntent(first.payment_intent_id, "canceled", 2500),
        StripeIntent(made.id, "requires_payment_method", 2500),
    ]
    order = await payments.order("order-6")
    assert (order.payment_intent_id, order.status, order.attempt) == (
        made.id,
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        2,
    )


# -- two gateway processes ---------------------------------------------------------------------------------------


async def _start_worker(
    emulator: StripeEmulator, database: Path, order_id: str, name: str, log: Path
) -> asyncio.subprocess.Process:
    with log.open("wb") as stderr:  # the child keeps its own handle
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.payment_worker",
            "--database",
            str(database),
            "--api-base",
            emulator.api_base,
            "--secret-key",
            emulator.secret_key,
            "--publishable-key",
            emulator.publishable_key,
            "--order-id",
            order_id,
            "--calls",
            "20",
            "--name",
            name,
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )


def _tail(log: Path) -> str:
    """The end of a worker's stderr, for a failure message."""
    return log.read_text(errors="replace")[-4000:]


async def _wait_until_ready(worker: asyncio.subprocess.Process, log: Path) -> None:
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), WORKER_TIMEOUT)
    assert line.decode().strip() == READY, _tail(log)


async def _report(worker: asyncio.subprocess.Process, log: Path) -> WorkerReport:
    out, _ = await asyncio.wait_for(worker.communicate(), WORKER_TIMEOUT)
    assert worker.returncode == 0, _tail(log)
    return msgspec.json.decode(out.splitlines()[-1], type=WorkerReport)


async def test_two_processes_racing_creates_for_one_order_make_one_payment_intent(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    database = tmp_path / "gateway.sqlite3"
    store = await SqliteStore.open(database)  # migrated before the workers open it
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers: list[asyncio.subprocess.Process] = []
    try:
        for n, log in enumerate(logs):
            workers.append(await _start_worker(fresh_stripe_emulator, database, "race", f"p{n}", log))
        for worker, log in zip(workers, logs, strict=True):
            await _wait_until_ready(worker, log)
        for worker in workers:  # every worker is ready: start them together
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
        reports = [await _report(worker, log) for worker, log in zip(workers, logs, strict=True)]
        order = await store.get_order("race")
        recorded = await store.list_payment_intents("race")
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        await store.close()

    assert [report.errors for report in reports] == [[], []]
    assert [len(report.payment_intent_ids) for report in reports] == [20, 20]
    ids = {pi for report in reports for pi in report.payment_intent_ids}
    secrets = {secret for report in reports for secret in report.client_secrets}
    assert len(ids) == 1, ids
    assert len(secrets) == 1, secrets
    [intent_id] = ids
    async with stripe_sdk(fresh_stripe_emulator) as sdk:
        assert await intents_at_stripe(sdk, "race") == [
            StripeIntent(intent_id, "requires_payment_method", 2500)
        ]
    assert order is not None
    assert (order.payment_intent_id, order.status) == (intent_id, PaymentStatus.REQUIRES_PAYMENT_METHOD)
    assert [i.id for i in recorded] == [intent_id]
