"""Which order changes count as payment outcomes in the metrics (`change_outcome`), whatever taught the gateway
about them: a webhook, or Stripe's answer to the gateway's own call."""

from __future__ import annotations

import msgspec
import pytest

from gateway.payments.reports import change_outcome
from gateway.store import Order, PaymentStatus

S = PaymentStatus
BEFORE = Order(
    order_id="o-1",
    amount=2500,
    currency="eur",
    status=S.REQUIRES_PAYMENT_METHOD,
    payment_intent_id="pi_1",
    customer_id=None,
    amount_received=0,
    amount_refunded=0,
    attempt=1,
    nonce="n",
    owner=None,
    last_error=None,
    version=1,
    created_at="",
    updated_at="",
)


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ({"status": S.SUCCEEDED, "amount_received": 2500}, ("succeeded", 2500)),
        ({"status": S.CANCELED}, ("canceled", 2500)),
        ({"last_error": "card_declined: Your card was declined."}, ("failed", 2500)),
        ({"status": S.PROCESSING}, None),
        ({"amount": 3000}, None),
    ],
)
def test_a_change_of_an_unpaid_order(change: dict[str, object], outcome: tuple[str, int] | None) -> None:
    assert change_outcome(BEFORE, msgspec.structs.replace(BEFORE, **change)) == outcome


def test_refunds_count_what_is_newly_refunded_and_nothing_counts_twice() -> None:
    paid = msgspec.structs.replace(BEFORE, status=S.SUCCEEDED, amount_received=2500, amount_refunded=500)

    assert change_outcome(paid, msgspec.structs.replace(paid, amount_refunded=1500)) == ("refunded", 1000)
    assert change_outcome(paid, paid) is None  # a report already reflected (the webhook after the call)
    failed = msgspec.structs.replace(BEFORE, last_error="card_declined")
    assert change_outcome(failed, failed) is None
