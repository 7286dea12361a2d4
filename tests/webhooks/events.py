"""Stripe events as Stripe sends them (the fields the gateway reads, and a few it does not), for webhook tests."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.store import AuditEntry, NewOrder, Order, OrderUpdate, PaymentStatus, Store

__all__ = ["charge_refunded", "intent_event", "paid_order", "unpaid_order"]

CREATED = 1_705_312_200


def _event(event_id: str, event_type: str, obj: dict[str, Any], created: int, livemode: bool) -> bytes:
    return msgspec.json.encode(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "livemode": livemode,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
    )


def intent_event(
    event_id: str,
    status: str,
    *,
    intent_id: str = "pi_1",
    order_id: str | None = "order-1",
    amount: int = 2500,
    created: int = CREATED,
    error: str | None = None,
    livemode: bool = False,
) -> bytes:
    """A `payment_intent.*` event whose type follows the intent's status."""
    event_type = {
        "succeeded": "payment_intent.succeeded",
        "canceled": "payment_intent.canceled",
        "requires_payment_method": "payment_intent.payment_failed",
    }[status]
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": "eur",
        "status": status,
        "metadata": {"order_id": order_id} if order_id is not None else {},
        "latest_charge": "ch_1" if status == "succeeded" else None,
        "livemode": livemode,
        "last_payment_error": (
            {"code": "card_declined", "decline_code": error, "message": "Your card was declined."}
            if error
            else None
        ),
    }
    return _event(event_id, event_type, intent, created, livemode)


def charge_refunded(
    event_id: str,
    amount_refunded: int,
    *,
    intent_id: str = "pi_1",
    amount: int = 2500,
    created: int = CREATED,
) -> bytes:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= amount,
        "currency": "eur",
        "payment_intent": intent_id,
        "metadata": {},
    }
    return _event(event_id, "charge.refunded", charge, created, False)


async def unpaid_order(store: Store, order_id: str = "order-1", intent_id: str | None = "pi_1") -> Order:
    """An order whose PaymentIntent (`intent_id`) waits for a payment method, as createPaymentIntent leaves it."""
    audit = AuditEntry(action="order.created", actor="test", request_id=None, order_id=order_id)
    order, _ = await store.create_order(
        NewOrder(order_id=order_id, amount=2500, currency="eur", nonce="n0nce"), audit
    )
    if intent_id is None:
        return order
    update = OrderUpdate(payment_intent_id=intent_id, status=PaymentStatus.REQUIRES_PAYMENT_METHOD)
    return await store.update_order(order_id, order.version, update, audit)


async def paid_order(store: Store, order_id: str = "order-1", intent_id: str = "pi_1") -> Order:
    order = await unpaid_order(store, order_id, intent_id)
    audit = AuditEntry(action="paid", actor="test", request_id=None, order_id=order_id)
    update = OrderUpdate(status=PaymentStatus.SUCCEEDED, amount_received=2500)
    return await store.update_order(order_id, order.version, update, audit)
