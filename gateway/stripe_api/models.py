"""The parts of Stripe's objects the gateway uses, as plain msgspec structs (decoded from the SDK's objects once,
so nothing past `gateway.stripe_api` depends on the SDK's types)."""

from __future__ import annotations

import msgspec

__all__ = [
    "Charge",
    "Customer",
    "EphemeralKey",
    "PaymentIntent",
    "PaymentMethodDomain",
    "Refund",
    "WebhookEndpoint",
]


class LastPaymentError(msgspec.Struct, frozen=True):
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class PaymentIntent(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    status: str
    client_secret: str | None = None
    customer: str | None = None
    latest_charge: str | None = None
    """The charge's id (the SDK may hand an expanded object; it is reduced to its id)."""
    amount_received: int = 0
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    last_payment_error: LastPaymentError | None = None
    livemode: bool = False


class Charge(msgspec.Struct, frozen=True):
    id: str
    amount: int
    amount_captured: int = 0
    amount_refunded: int = 0
    refunded: bool = False
    payment_intent: str | None = None
    currency: str = ""
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class Refund(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    status: str | None = None
    charge: str | None = None
    payment_intent: str | None = None
    reason: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class Customer(msgspec.Struct, frozen=True):
    id: str


class EphemeralKey(msgspec.Struct, frozen=True):
    id: str
    secret: str
    expires: int | None = None


class WalletStatus(msgspec.Struct, frozen=True):
    status: str = "inactive"


class PaymentMethodDomain(msgspec.Struct, frozen=True):
    id: str
    domain_name: str
    enabled: bool = False
    apple_pay: WalletStatus = msgspec.field(default_factory=WalletStatus)
    google_pay: WalletStatus = msgspec.field(default_factory=WalletStatus)


class WebhookEndpoint(msgspec.Struct, frozen=True):
    """Where Stripe delivers the account's events (the Dashboard's Webhooks page). The signing secret is not
    here: Stripe shows it at creation only."""

    id: str
    url: str
    status: str = "enabled"
    """`enabled` or `disabled`."""
    enabled_events: list[str] = msgspec.field(default_factory=list)
    """Event types delivered; `*` is every type."""
    api_version: str | None = None
    """The version events are rendered with; None: the account's default."""
    livemode: bool = False
