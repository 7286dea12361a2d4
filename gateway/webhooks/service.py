"""Receiving Stripe's events: record first (durably, by event id, with the raw payload), then apply, exactly once.

- **Record, then apply.** An event is stored before anything else is done with it, so that once the route has
  answered 2xx the event is never lost. Applying it and marking it applied are one transaction (see
  `Store.apply_webhook_event`): a crash in between leaves it `received`, Stripe (which got no 2xx) sends it again,
  and that delivery applies it. A second delivery of an applied event finds it so and applies nothing.
- **Order-proof.** What an event does to its order is decided by `gateway.payments.reports` from the order as read
  inside that transaction, along the state machine: a late failure never undoes a payment, a refund total is never
  lowered.
- **Retry semantics.** A transient failure (the store unavailable) propagates, and the route answers 5xx so that
  Stripe retries. An event the gateway will never be able to use (not JSON, not about one of our orders, a type it
  does not apply) is recorded as `ignored` with the reason, and acknowledged, so Stripe does not retry it for days.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from loguru import logger

from gateway.metrics.recorder import Metrics
from gateway.payments.reports import ORDER_ID_METADATA, intent_report, refund_report
from gateway.settings import Settings
from gateway.store import (
    Order,
    OrderEffect,
    OrderNotFound,
    Store,
    StoreError,
    StoreUnavailable,
    WebhookEvent,
    WebhookEventStatus,
)
from gateway.webhooks.events import (
    APPLIED_TYPES,
    EventEnvelope,
    EventType,
    UnusableEvent,
    charge_of,
    intent_of,
    parse_event,
)

__all__ = ["Outcome", "Receipt", "WebhookService"]

UNUSABLE_PREFIX: Final = "unusable_"
"""Id under which a signed body with no usable event id is recorded: the prefix and its SHA-256."""


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    """Applied to its order now (which may have changed nothing: a stale or repeated report)."""
    DUPLICATE = "duplicate"
    """Already applied or ignored by an earlier delivery: nothing done."""
    IGNORED = "ignored"
    """Recorded, not applied (see the note)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    outcome: Outcome
    note: str | None = None
    order_id: str | None = None
    event_type: str = "unusable"
    """Stripe's `type` of the event (`unusable` when the body has none)."""


_PAYMENT_OUTCOMES: Final = {
    EventType.PAYMENT_INTENT_SUCCEEDED.value: "succeeded",
    EventType.PAYMENT_INTENT_PAYMENT_FAILED.value: "failed",
    EventType.PAYMENT_INTENT_CANCELED.value: "canceled",
    EventType.CHARGE_REFUNDED.value: "refunded",
}
"""What an applied event that changed its order counts as, in the payment outcome metrics."""


@dataclass(frozen=True, slots=True)
class _Apply:
    order_id: str
    effect_of: Callable[[Order], OrderEffect]


@dataclass(frozen=True, slots=True)
class _Ignore:
    note: str


def _received(event_id: str, event_type: str, created: int, body: bytes) -> WebhookEvent:
    """A delivery as it is recorded (the store sets when)."""
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created=created,
        payload=body,
        status=WebhookEventStatus.RECEIVED,
        received_at="",
        applied_at=None,
        deliveries=1,
        note=None,
    )


class WebhookService:
    """Records and applies Stripe events. Create once per application."""

    def __init__(self, store: Store, settings: Settings, metrics: Metrics | None = None) -> None:
        self._store = store
        self._livemode = not settings.stripe_test_mode
        self._metrics = metrics or Metrics()

    async def receive(self, body: bytes) -> Receipt:
        """Record a verified delivery and apply it, unless an earlier delivery did. Raises StoreError (transient:
        StoreUnavailable) when the event could not be recorded or applied: the caller must not acknowledge it."""
        try:
            event = parse_event(body)
        except UnusableEvent as unusable:
            return await self._record_unusable(body, str(unusable))
        receipt = await self._receive(event, body)
        if receipt.outcome is not Outcome.DUPLICATE:  # recorded now, for the first time
            self._metrics.webhook_lag(event.type, event.created)
        return dataclasses.replace(receipt, event_type=event.type)

    async def _receive(self, event: EventEnvelope, body: bytes) -> Receipt:
        plan = await self._plan(event, actor="stripe")
        record = _received(event.id, event.type, event.created, body)
        if isinstance(plan, _Apply):
            # The common case in one transaction. If it fails for any reason but an outage, nothing was recorded:
            # the event is then recorded on its own (durably, before the answer) and applied apart, the way
            # that reports what went wrong.
            try:
                recorded, order, effect = await self._store.receive_webhook_event(
                    record, plan.order_id, plan.effect_of
                )
            except StoreUnavailable:
                raise
            except Exception:  # noqa: S110 - the slow path below meets the same failure and handles it
                pass
            else:
                if effect is None:
                    return Receipt(event.id, Outcome.DUPLICATE, recorded.note, recorded.order_id)
                return self._applied(event, order, effect)
        stored, _ = await self._store.record_webhook_event(record)
        if stored.status is not WebhookEventStatus.RECEIVED:
            return Receipt(event.id, Outcome.DUPLICATE, stored.note, stored.order_id)
        return await self._settle(event, plan, again=False)

    async def replay(self, event_id: str, actor: str = "operator") -> Receipt:
        """Apply a recorded event again (an operator's command; `actor` names them in the audit trail): idempotent,
        since a report that is already reflected changes nothing. Raises LookupError for an unknown id."""
        stored = await self._store.get_webhook_event(event_id)
        if stored is None:
            raise LookupError(f"no webhook event {event_id}")
        try:
            event = parse_event(stored.payload)
        except UnusableEvent as unusable:
            await self._store.ignore_webhook_event(event_id, str(unusable), again=True)
            return Receipt(event_id, Outcome.IGNORED, str(unusable))
        receipt = await self._settle(event, await self._plan(event, actor), again=True)
        return dataclasses.replace(receipt, event_type=event.type)

    async def _plan(self, event: EventEnvelope, actor: str) -> _Apply | _Ignore:
        """What to do with an event: apply it to an order, or record why not."""
        if event.type not in APPLIED_TYPES:
            return _Ignore(f"{event.type} is recorded, not applied")
        if event.livemode != self._livemode:
            mode = "live" if event.livemode else "test"
            return _Ignore(f"a {mode}-mode event, and the gateway is not")
        try:
            order_id, effect_of = await self._effect(event, actor)
        except UnusableEvent as unusable:
            logger.bind(eventId=event.id, type=event.type, reason=str(unusable)).warning(
                "webhook_event_unusable"
            )
            return _Ignore(str(unusable))
        if order_id is None:
            return _Ignore("not about an order of this gateway")
        return _Apply(order_id, effect_of)

    async def _settle(self, event: EventEnvelope, plan: _Apply | _Ignore, *, again: bool) -> Receipt:
        """Carry out `plan` for an event already recorded."""
        if isinstance(plan, _Ignore):
            return await self._ignore(event.id, plan.note, again=again)
        try:
            order, effect = await self._store.apply_webhook_event(
                event.id, plan.order_id, plan.effect_of, again=again
            )
        except OrderNotFound:
            return await self._ignore(
                event.id, f'order "{plan.order_id}" is not in this gateway', again=again
            )
        except StoreError as error:
            if isinstance(error, StoreUnavailable):
                await self._note_failure(event.id, str(error))
            raise
        if effect is None:
            return Receipt(event.id, Outcome.DUPLICATE, None, order.order_id)
        return self._applied(event, order, effect)

    def _applied(self, event: EventEnvelope, order: Order, effect: OrderEffect) -> Receipt:
        outcome = _PAYMENT_OUTCOMES.get(event.type)
        if outcome == "refunded" and effect.refunded_now > 0:
            self._metrics.payment(outcome, order.currency, effect.refunded_now)
        elif outcome is not None and effect.update is not None:
            amount = order.amount_received if outcome == "succeeded" else order.amount
            self._metrics.payment(outcome, order.currency, amount)
        logger.bind(
            eventId=event.id,
            type=event.type,
            orderId=order.order_id,
            status=order.status.value,
            note=effect.note,
        ).info("webhook_event_applied")
        return Receipt(event.id, Outcome.APPLIED, effect.note, order.order_id)

    async def _effect(
        self, event: EventEnvelope, actor: str
    ) -> tuple[str | None, Callable[[Order], OrderEffect]]:
        """The order the event is about (None: not one of ours), and what it does to it."""
        if event.type == EventType.CHARGE_REFUNDED:
            charge = charge_of(event)
            order = (
                await self._store.find_order_by_payment_intent(charge.payment_intent)
                if charge.payment_intent
                else None
            )
            order_id = order.order_id if order is not None else charge.metadata.get(ORDER_ID_METADATA)
            return order_id, lambda current: refund_report(
                current, charge, event_id=event.id, event_type=event.type, actor=actor
            )
        intent = intent_of(event)
        order_id = intent.metadata.get(ORDER_ID_METADATA)
        try:
            bound = await self._store.find_order_by_payment_intent(intent.id)
        except StoreUnavailable:
            raise
        except (
            StoreError
        ):  # an unreadable row: recorded first all the same, and applying it reports the fault
            bound = None
        if order_id is None:
            order_id = bound.order_id if bound is not None else None
        elif bound is not None and bound.order_id != order_id:
            # One PaymentIntent belongs to one order: metadata naming another (edited at Stripe, or forged with
            # a leaked signing secret) must not move the payment to it.
            raise UnusableEvent(f"{event.type} for a PaymentIntent of another order than its metadata names")
        return order_id, lambda current: intent_report(
            current, intent, event_id=event.id, event_type=event.type, actor=actor
        )

    async def _ignore(self, event_id: str, note: str, *, again: bool) -> Receipt:
        await self._store.ignore_webhook_event(event_id, note, again=again)
        logger.bind(eventId=event_id, note=note).info("webhook_event_ignored")
        return Receipt(event_id, Outcome.IGNORED, note)

    async def _record_unusable(self, body: bytes, reason: str) -> Receipt:
        event_id = UNUSABLE_PREFIX + hashlib.sha256(body).hexdigest()
        await self._store.record_webhook_event(_received(event_id, "unusable", int(time.time()), body))
        await self._store.ignore_webhook_event(event_id, reason)
        logger.bind(eventId=event_id, reason=reason).warning("webhook_event_unusable")
        return Receipt(event_id, Outcome.IGNORED, reason)

    async def _note_failure(self, event_id: str, note: str) -> None:
        # The store is failing: if this fails too, the event stays `received` anyway, and Stripe's retry applies it.
        with contextlib.suppress(StoreError):
            await self._store.note_webhook_event_failure(event_id, note)
