"""Stripe events as they arrive at the webhook route: the envelope, and the object each applied type carries.

Only what the gateway reads is decoded. A body that is signed but unusable (not JSON, no id, an object missing a
field the type needs) raises `UnusableEvent`: Stripe would send it again for three days, to the same end, so the
route records it, answers 2xx and says so in the log instead.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Final

import msgspec

from gateway.stripe_api.models import Charge, PaymentIntent

__all__ = [
    "APPLIED_TYPES",
    "EventEnvelope",
    "EventType",
    "UnusableEvent",
    "charge_of",
    "intent_of",
    "parse_event",
]


class EventType(enum.StrEnum):
    """The events the seed subscribes, which the gateway applies to orders; every other type is recorded only."""

    PAYMENT_INTENT_SUCCEEDED = "payment_intent.succeeded"
    PAYMENT_INTENT_PAYMENT_FAILED = "payment_intent.payment_failed"
    PAYMENT_INTENT_CANCELED = "payment_intent.canceled"
    CHARGE_REFUNDED = "charge.refunded"


APPLIED_TYPES: Final = frozenset(EventType)


class UnusableEvent(Exception):
    """A correctly signed body the gateway cannot use; the message says why (no payload content in it)."""


class _Data(msgspec.Struct, frozen=True):
    object: msgspec.Raw


MAX_AMOUNT: Final = 2**63 - 1
"""The largest integer every store holds (a signed 64-bit column); far above any amount or time Stripe sends."""


class EventEnvelope(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    created: Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
    data: _Data
    livemode: bool = False


_CURRENCY: Final = re.compile(r"[a-z]{3}")
_envelope_decoder: Final = msgspec.json.Decoder(EventEnvelope)
_intent_decoder: Final = msgspec.json.Decoder(PaymentIntent)
_charge_decoder: Final = msgspec.json.Decoder(Charge)


def parse_event(body: bytes) -> EventEnvelope:
    try:
        return _envelope_decoder.decode(body)
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError
        raise UnusableEvent(f"not a Stripe event: {_first_line(error)}") from None


def intent_of(event: EventEnvelope) -> PaymentIntent:
    try:
        intent = _intent_decoder.decode(event.data.object)
    except msgspec.DecodeError as error:
        raise UnusableEvent(f"{event.type} without a usable PaymentIntent: {_first_line(error)}") from None
    _check_money(
        event, "PaymentIntent", intent.currency, amount=intent.amount, amount_received=intent.amount_received
    )
    return intent


def charge_of(event: EventEnvelope) -> Charge:
    try:
        charge = _charge_decoder.decode(event.data.object)
    except msgspec.DecodeError as error:
        raise UnusableEvent(f"{event.type} without a usable Charge: {_first_line(error)}") from None
    _check_money(
        event,
        "Charge",
        charge.currency,
        amount=charge.amount,
        amount_captured=charge.amount_captured,
        amount_refunded=charge.amount_refunded,
    )
    return charge


def _check_money(event: EventEnvelope, kind: str, currency: str, *, amount: int, **others: int) -> None:
    """Amounts and a currency Stripe could have sent: anything else (a zero or negative amount, 2^63, an empty
    currency) is a signed event the store could never hold, recorded as unusable rather than failed for days."""
    if not 1 <= amount <= MAX_AMOUNT:
        raise UnusableEvent(f"{event.type} with a {kind} amount out of range")
    for name, value in others.items():
        if not 0 <= value <= MAX_AMOUNT:
            raise UnusableEvent(f"{event.type} with a {kind} {name} out of range")
    if _CURRENCY.fullmatch(currency) is None:
        raise UnusableEvent(f"{event.type} with a {kind} currency that is not an ISO code")


def _first_line(error: Exception) -> str:
    # msgspec's messages name the field (`Object missing required field `id``) and never echo the payload.
    return str(error).splitlines()[0][:200]
