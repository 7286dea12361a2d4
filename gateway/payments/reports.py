"""What Stripe's reports about a PaymentIntent or a Charge do to an order, as pure functions of the order and the
report: the same rules whether the report is a webhook or the answer to the gateway's own question.

Reports arrive late, twice, or out of order; each is checked against the state machine (`gateway.payments.states`)
and against the order's current PaymentIntent, so applying any set of reports in any order ends in the same state.
Refund totals are Stripe's cumulative `amount_refunded`, which the store only ever raises.
"""

from __future__ import annotations

import hashlib

import msgspec

from gateway.logs import now_iso
from gateway.payments.states import can_move
from gateway.store import AuditEntry, Order, OrderEffect, OrderUpdate, PaymentIntentRecord, PaymentStatus
from gateway.stripe_api.models import Charge, PaymentIntent

__all__ = [
    "ORDER_ID_METADATA",
    "change_outcome",
    "client_secret_digest",
    "error_text",
    "intent_record",
    "intent_report",
    "payment_status",
    "refund_report",
]

ORDER_ID_METADATA = "order_id"
"""The PaymentIntent's metadata key holding our order id (set by the gateway, never by the app)."""


def payment_status(value: str) -> PaymentStatus:
    """A PaymentIntent status as the store's enum (a status Stripe may add later reads as needing a payment
    method: not paid, not final)."""
    try:
        return PaymentStatus(value)
    except ValueError:
        return PaymentStatus.REQUIRES_PAYMENT_METHOD


def error_text(intent: PaymentIntent) -> str | None:
    error = intent.last_payment_error
    if error is None:
        return None
    code = error.decline_code or error.code or "payment_error"
    return f"{code}: {error.message}" if error.message else code


def client_secret_digest(client_secret: str) -> str:
    """What the store keeps of a client secret (SHA-256, hex): enough to recognise it, useless to pay with."""
    return hashlib.sha256(client_secret.encode("utf-8", "surrogatepass")).hexdigest()


def intent_record(order: Order, intent: PaymentIntent) -> PaymentIntentRecord:
    now = now_iso()
    return PaymentIntentRecord(
        id=intent.id,
        order_id=order.order_id,
        attempt=order.attempt,
        amount=intent.amount,
        currency=intent.currency,
        status=intent.status,
        created_at=now,
        updated_at=now,
        client_secret_sha256=client_secret_digest(intent.client_secret) if intent.client_secret else None,
    )


def intent_report(
    order: Order, intent: PaymentIntent, *, event_id: str, event_type: str, actor: str = "stripe"
) -> OrderEffect:
    """A webhook's report that the PaymentIntent is now as `intent` shows it (`actor`: who applies it, for the
    audit trail: Stripe delivering it, or an operator replaying it)."""
    adopting = (
        order.payment_intent_id is None
        and order.status is PaymentStatus.CREATING
        and intent.metadata.get(ORDER_ID_METADATA) == order.order_id
    )
    if intent.id != order.payment_intent_id and not adopting:
        # An earlier attempt's intent (canceled and replaced): the order follows its current intent only.
        return OrderEffect(note=f"about {intent.id}, not the order's current PaymentIntent: order unchanged")
    reported = payment_status(intent.status)
    if not can_move(order.status, reported):
        return OrderEffect(note=f"stale: the order is {order.status.value}, the report says {reported.value}")
    error = error_text(intent) if reported is not PaymentStatus.SUCCEEDED else None
    update = OrderUpdate(
        status=reported,
        amount_received=intent.amount_received,
        last_error=error,
        # The amount paid is the intent's; while unpaid, the order's amount is the gateway's to change.
        amount=intent.amount if reported is PaymentStatus.SUCCEEDED else msgspec.UNSET,
        payment_intent_id=intent.id if adopting else msgspec.UNSET,
    )
    known = (order.status, order.amount_received, order.last_error, order.payment_intent_id)
    if (reported, intent.amount_received, error, intent.id) == known and (
        reported is not PaymentStatus.SUCCEEDED or order.amount == intent.amount
    ):
        return OrderEffect(note=f"already {reported.value}")
    audit = AuditEntry(
        action=f"webhook.{event_type}",
        actor=actor,
        request_id=event_id,
        order_id=order.order_id,
        details={"paymentIntent": intent.id, "before": order.status.value, "after": reported.value},
    )
    return OrderEffect(
        note=f"{order.status.value} -> {reported.value}",
        update=update,
        intent=intent_record(order, intent),
        audit=audit,
    )


def refund_report(
    order: Order, charge: Charge, *, event_id: str, event_type: str, actor: str = "stripe"
) -> OrderEffect:
    """A webhook's report of the charge's cumulative refunded amount."""
    if charge.amount_refunded <= order.amount_refunded:
        return OrderEffect(
            note=f"refunded total already {order.amount_refunded} (report: {charge.amount_refunded})"
        )
    audit = AuditEntry(
        action=f"webhook.{event_type}",
        actor=actor,
        request_id=event_id,
        order_id=order.order_id,
        details={"charge": charge.id, "before": order.amount_refunded, "after": charge.amount_refunded},
    )
    return OrderEffect(
        note=f"refunded total {order.amount_refunded} -> {charge.amount_refunded}",
        amount_refunded=charge.amount_refunded,
        refunded_now=charge.amount_refunded - order.amount_refunded,
        audit=audit,
    )


def change_outcome(before: Order, after: Order) -> tuple[str, int] | None:
    """What an order's change counts as in the payment outcome metrics, with its amount: `succeeded` (the amount
    received), `canceled` or `failed` (a new payment error; the amount asked), `refunded` (how much more is
    refunded); None for any other change."""
    if after.status is PaymentStatus.SUCCEEDED and before.status is not PaymentStatus.SUCCEEDED:
        return "succeeded", after.amount_received
    if after.status is PaymentStatus.CANCELED and before.status is not PaymentStatus.CANCELED:
        return "canceled", after.amount
    if after.amount_refunded > before.amount_refunded:
        return "refunded", after.amount_refunded - before.amount_refunded
    if after.last_error is not None and after.last_error != before.last_error:
        return "failed", after.amount
    return None
