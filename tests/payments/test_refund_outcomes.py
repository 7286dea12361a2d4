"""Refunds whose answer from Stripe is lost, refused or never sent: never a second refund, never a lost one.

PaymentService against the local emulator over HTTP and a real SQLite file. What cannot be provoked from outside —
Stripe making a refund and the answer then being lost on the way back — is injected: `LossyStripe` is the real
StripeApi whose next `create_refund` loses its answer after Stripe made the refund (`made`), fails before reaching
Stripe (`not_made`), or is refused (`refused`); and `FlakyStore` fails the store write that records a refund
Stripe made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import stripe

from gateway.errors import ErrorCode, TRPCError
from gateway.payments import Actor, PaymentService
from gateway.settings import Settings
from gateway.store import RefundRequestStatus, StoreUnavailable
from gateway.store.sqlite import SqliteStore
from gateway.stripe_api import FailureKind, StripeApi, StripeCallError
from gateway.stripe_api.models import Refund
from schemas.stripe import CreatePaymentIntentInput
from tests.support.flaky_store import FaultTiming, FlakyStore
from tests.support.stripe_emulator import StripeEmulator

OPERATOR = Actor("operator:alice", "req_1", is_admin=True)
Loss = Literal["made", "not_made", "refused"]


class LossyStripe(StripeApi):
    """The real StripeApi, with one injected fault on the next refund (see the module's docstring)."""

    next_refund_fault: Loss | None = None
    refunds_sent = 0

    async def create_refund(self, **params: Any) -> Refund:
        fault, self.next_refund_fault = self.next_refund_fault, None
        if fault == "refused":
            raise StripeCallError(
                FailureKind.INVALID_REQUEST,
                "injected: Stripe refused the refund",
                operation="refunds.create",
                code="charge_disputed",
            )
        if fault == "not_made":
            raise StripeCallError(FailureKind.CONNECTION, "injected: never sent", operation="refunds.create")
        self.refunds_sent += 1
        refund = await super().create_refund(**params)
        if fault == "made":
            raise StripeCallError(FailureKind.TIMEOUT, "injected: answer lost", operation="refunds.create")
        return refund


@dataclass
class Refunds:
    api: LossyStripe
    store: SqliteStore
    flaky: FlakyStore
    """The same store, where a test can inject a fault."""
    settings: Settings
    sdk: stripe.StripeClient

    def service(self, refund_in_flight_seconds: float = 0.0) -> PaymentService:
        return PaymentService(
            self.flaky, self.api, self.settings, refund_in_flight_seconds=refund_in_flight_seconds
        )

    async def paid_order(self, order_id: str, amount: int = 2500) -> None:
        service = self.service()
        request = CreatePaymentIntentInput(order_id=order_id, amount=amount, currency="eur")
        await service.create_payment_intent(request, OPERATOR)
        intent = await service.pay_for_development(order_id, "pm_card_visa")
        assert intent.status == "succeeded"

    async def refunds_at_stripe(self, order_id: str) -> list[int]:
        """Amounts of the order's refunds at Stripe, oldest first."""
        order = await self.store.get_order(order_id)
        assert order is not None
        assert order.payment_intent_id is not None
        listed = await self.sdk.v1.refunds.list_async({"payment_intent": order.payment_intent_id})
        return [int(refund.amount) for refund in reversed(listed.data)]

    async def refunded_total(self, order_id: str) -> int:
        order = await self.store.get_order(order_id)
        assert order is not None
        return order.amount_refunded


@pytest.fixture
async def refunds(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Refunds]:
    emulator = fresh_stripe_emulator
    settings = Settings(
        stripe_secret_key=emulator.secret_key,
        stripe_publishable_key=emulator.publishable_key,
        stripe_api_base=emulator.api_base,
        stripe_max_network_retries=0,
    )
    store = await SqliteStore.open(tmp_path / "gateway.sqlite3")
    lossy = LossyStripe(settings)
    http = stripe.AIOHTTPClient()
    sdk = stripe.StripeClient(
        emulator.secret_key, base_addresses={"api": emulator.api_base}, http_client=http
    )
    try:
        yield Refunds(lossy, store, FlakyStore(store), settings, sdk)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        await lossy.close()
        await store.close()


async def test_a_refund_whose_answer_was_lost_is_found_and_not_made_again(refunds: Refunds) -> None:
    await refunds.paid_order("lost-1")
    refunds.api.next_refund_fault = "made"
    service = refunds.service(refund_in_flight_seconds=3600)  # found at Stripe: no wait needed

    with pytest.raises(StripeCallError) as lost:
        await service.refund("lost-1", 1000, OPERATOR)
    assert lost.value.kind is FailureKind.TIMEOUT
    assert await refunds.refunded_total("lost-1") == 0  # nothing recorded yet: Stripe's answer never came

    retried = await service.refund("lost-1", 1000, OPERATOR)

    assert await refunds.refunds_at_stripe("lost-1") == [1000]
    assert refunds.api.refunds_sent == 1
    assert (retried.amount, retried.amount_refunded, retried.amount_remaining) == (1000, 1000, 1500)
    [recorded] = await refunds.store.list_refunds("lost-1")
    assert recorded.id == retried.refund_id
    assert await refunds.refunded_total("lost-1") == 1000

    # Once the caller has its answer, the same request again is another refund, as without the loss.
    second = await service.refund("lost-1", 1000, OPERATOR)
    assert second.refund_id != retried.refund_id
    assert await refunds.refunds_at_stripe("lost-1") == [1000, 1000]
    assert await refunds.refunded_total("lost-1") == 2000


async def test_after_a_lost_answer_another_callers_refund_is_its_own(refunds: Refunds) -> None:
    await refunds.paid_order("lost-2")
    refunds.api.next_refund_fault = "made"
    service = refunds.service()
    with pytest.raises(StripeCallError):
        await service.refund("lost-2", 1000, OPERATOR)

    other = await service.refund("lost-2", 1000, Actor("operator:bob", "req_2", is_admin=True))

    # Bob's request settled Alice's (recorded) and then made his own.
    assert await refunds.refunds_at_stripe("lost-2") == [1000, 1000]
    assert other.amount_refunded == 2000
    assert len(await refunds.store.list_refunds("lost-2")) == 2


async def test_a_refund_stripe_never_made_is_abandoned_then_made_once(refunds: Refunds) -> None:
    await refunds.paid_order("unsent")
    refunds.api.next_refund_fault = "not_made"
    service = refunds.service(refund_in_flight_seconds=0)  # no call can still be in flight
    with pytest.raises(StripeCallError):
        await service.refund("unsent", 1000, OPERATOR)
    pending = await refunds.store.get_pending_refund_request("unsent")
    assert pending is not None

    retried = await service.refund("unsent", 1000, OPERATOR)

    assert await refunds.refunds_at_stripe("unsent") == [1000]
    assert retried.amount_refunded == 1000
    assert await refunds.store.get_pending_refund_request("unsent") is None
    actions = [entry.action for entry in reversed(await refunds.store.list_audit("unsent"))]
    assert actions[-4:] == ["refund.requested", "refund.abandoned", "refund.requested", "refund.created"]


async def test_a_refund_that_may_still_be_in_flight_holds_back_the_next_one(refunds: Refunds) -> None:
    await refunds.paid_order("in-flight")
    refunds.api.next_refund_fault = "not_made"
    service = refunds.service(refund_in_flight_seconds=3600)
    with pytest.raises(StripeCallError):
        await service.refund("in-flight", 1000, OPERATOR)

    with pytest.raises(TRPCError) as held:
        await service.refund("in-flight", 500, OPERATOR)

    assert held.value.code is ErrorCode.CONFLICT
    assert "under way" in held.value.message
    assert "retry in" in held.value.message
    assert await refunds.refunds_at_stripe("in-flight") == []
    assert refunds.api.refunds_sent == 0


async def test_a_keyed_refund_whose_answer_was_lost_is_answered_by_its_key(refunds: Refunds) -> None:
    await refunds.paid_order("keyed")
    refunds.api.next_refund_fault = "made"
    service = refunds.service(refund_in_flight_seconds=3600)
    with pytest.raises(StripeCallError):
        await service.refund("keyed", 700, OPERATOR, idempotency_key="refund-keyed-1")

    retried = await service.refund("keyed", 700, OPERATOR, idempotency_key="refund-keyed-1")
    again = await service.refund("keyed", 700, OPERATOR, idempotency_key="refund-keyed-1")
    with pytest.raises(TRPCError) as other:
        await service.refund("keyed", 800, OPERATOR, idempotency_key="refund-keyed-1")

    assert again == retried
    assert other.value.code is ErrorCode.CONFLICT
    assert await refunds.refunds_at_stripe("keyed") == [700]
    assert refunds.api.refunds_sent == 1


async def test_a_keyed_refund_stripe_never_made_is_tried_again_under_its_key(refunds: Refunds) -> None:
    await refunds.paid_order("keyed-retry")
    refunds.api.next_refund_fault = "not_made"
    service = refunds.service(refund_in_flight_seconds=0)
    with pytest.raises(StripeCallError):
        await service.refund("keyed-retry", None, OPERATOR, idempotency_key="refund-kr")
    # Meanwhile someone refunds part of it: "the rest" is worked out again when the request is tried again.
    await service.refund("keyed-retry", 500, OPERATOR)

    rest = await service.refund("keyed-retry", None, OPERATOR, idempotency_key="refund-kr")

    assert (rest.amount, rest.amount_refunded, rest.amount_remaining) == (2000, 2500, 0)
    assert await refunds.refunds_at_stripe("keyed-retry") == [500, 2000]
    request = await refunds.store.get_refund_request(caller_key="refund-kr")
    assert request is not None
    assert (request.status, request.tries, request.amount) == (RefundRequestStatus.SUCCEEDED, 2, 2000)


async def test_a_refused_keyed_refund_is_refused_again_without_asking_stripe(refunds: Refunds) -> None:
    await refunds.paid_order("refused")
    refunds.api.next_refund_fault = "refused"
    service = refunds.service()
    with pytest.raises(StripeCallError) as refused:
        await service.refund("refused", 700, OPERATOR, idempotency_key="refund-refused")
    assert refused.value.kind is FailureKind.INVALID_REQUEST

    with pytest.raises(TRPCError) as replayed:
        await service.refund("refused", 700, OPERATOR, idempotency_key="refund-refused")

    assert replayed.value.code is ErrorCode.BAD_REQUEST
    assert replayed.value.data == {"stripe": {"kind": "invalid_request", "code": "charge_disputed"}}
    assert refunds.api.refunds_sent == 0
    # A refusal holds nothing back: another refund of the order goes ahead.
    made = await service.refund("refused", 700, OPERATOR)
    assert made.amount_refunded == 700
    assert await refunds.refunds_at_stripe("refused") == [700]


@pytest.mark.parametrize(
    ("timing", "key"),
    [("before", None), ("before", "refund-crash"), ("after", "refund-crash")],
)
async def test_a_refund_whose_store_write_was_injected_to_fail_is_recorded_once_by_the_retry(
    refunds: Refunds, timing: FaultTiming, key: str | None
) -> None:
    """`before`: the refund is still pending, and the retry finds it at Stripe. `after`: it was recorded but the
    caller never heard; only its idempotency key tells a retry from a new refund (as on Stripe itself)."""
    await refunds.paid_order("crash")
    refunds.flaky.inject_fault("finish_refund_request", timing=timing)
    service = refunds.service(refund_in_flight_seconds=3600)
    with pytest.raises(StoreUnavailable):
        await service.refund("crash", 900, OPERATOR, idempotency_key=key)
    assert refunds.flaky.faults_raised == ["finish_refund_request#1"]

    retried = await service.refund("crash", 900, OPERATOR, idempotency_key=key)

    assert await refunds.refunds_at_stripe("crash") == [900]
    assert [refund.id for refund in await refunds.store.list_refunds("crash")] == [retried.refund_id]
    assert await refunds.refunded_total("crash") == 900
    actions = [entry.action for entry in await refunds.store.list_audit("crash")]
    assert actions.count("refund.created") == 1
