"""Schemas of the `stripe.*` procedures: JSON field names are camelCase, money is an integer in the currency's
minor unit (cents; for zero-decimal currencies such as JPY, the amount itself)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "ORDER_ID_PATTERN",
    "CancelPaymentIntentInput",
    "CancelPaymentIntentResult",
    "CreatePaymentIntentInput",
    "CustomerInput",
    "NativePayAvailability",
    "NativePayInput",
    "OrderInput",
    "PaymentIntentResult",
    "PaymentQrCode",
    "PaymentQrCodeInput",
    "PaymentStatusResult",
    "QrRefusal",
    "QrVerification",
    "RefundInput",
    "RefundResult",
    "StripeConfig",
    "VerifyPaymentQrCodeInput",
]

ORDER_ID_PATTERN: Final = r"^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$"
"""Any printable text (spaces, accents, `/`, `&`, `%` ...), not blank, without C0/C1 control characters."""
OrderId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=ORDER_ID_PATTERN,
        description="The app's own order id: printable text, 1-200 characters",
    ),
]
Amount = Annotated[
    int,
    Meta(
        ge=1, le=99_999_999, description="Amount in the currency's minor unit (e.g. cents), at most 8 digits"
    ),
]
Currency = Annotated[
    str, Meta(pattern="^[A-Za-z]{3}$", description="ISO 4217 currency code, e.g. `eur` (any letter case)")
]
MetadataKey = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[^\[\]]+$")]
MetadataValue = Annotated[str, Meta(max_length=500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Meta(max_length=49, description="Up to 49 keys (Stripe allows 50; `order_id` is the gateway's)"),
]
Hostname = Annotated[
    str,
    Meta(
        max_length=253,
        pattern=r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$",
        description="A host name such as `shop.example.com` (internationalised names in their xn-- form)",
    ),
]
ClientSecret = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z0-9_]+$",
        description=(
            "The clientSecret createPaymentIntent returned: with guest checkout, how a caller without a bearer token"
            " proves the order is theirs"
        ),
    ),
]
PaymentIntentStatus = Literal[
    "creating",
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]


class StripeConfig(msgspec.Struct, rename="camel", frozen=True):
    """What the app needs to initialise the Stripe SDK and the PaymentSheet."""

    publishable_key: str
    """`pk_test_…` or `pk_live_…`: the key the app's Stripe SDK is initialised with."""
    merchant_display_name: str
    """The name the PaymentSheet shows (`merchantDisplayName`)."""
    merchant_country_code: str
    """ISO 3166-1 alpha-2 country, as Apple Pay and Google Pay need it (`merchantCountryCode`)."""
    test_mode: bool
    """True with test keys: the app should use Google Pay's test environment."""


class CustomerInput(msgspec.Struct, rename="camel", frozen=True):
    """The buyer, when the PaymentSheet should offer their saved cards: a Stripe Customer is created once per
    e-mail address and reused."""

    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    name: Annotated[str, Meta(max_length=256)] | None = None
    phone: Annotated[str, Meta(max_length=20)] | None = None


class CreatePaymentIntentInput(msgspec.Struct, rename="camel", frozen=True):
    order_id: OrderId
    amount: Amount
    currency: Currency
    description: Annotated[str, Meta(max_length=1000)] | None = None
    metadata: Metadata | None = None
    customer: CustomerInput | None = None
    client_secret: ClientSecret | None = None
    """A guest changing its own order (e.g. a new amount) sends the client secret it was given."""


class PaymentIntentResult(msgspec.Struct, rename="camel", frozen=True):
    """What `initPaymentSheet` needs. The same order, amount and currency always give the same PaymentIntent."""

    order_id: str
    payment_intent_id: str
    client_secret: str
    amount: int
    currency: str
    """Lower case, as Stripe writes it."""
    status: PaymentIntentStatus
    publishable_key: str
    customer_id: str | None = None
    ephemeral_key: str | None = None
    """The ephemeral key's secret (`customerEphemeralKeySecret` of initPaymentSheet), when a customer is used."""


class OrderInput(msgspec.Struct, rename="camel", frozen=True):
    order_id: OrderId
    client_secret: ClientSecret | None = None
    """Only for a guest (no bearer token): the order's client secret."""


class PaymentStatusResult(msgspec.Struct, rename="camel", frozen=True):
    order_id: str
    status: PaymentIntentStatus
    amount: int
    currency: str
    amount_received: int
    amount_refunded: int
    refund_status: Literal["none", "partial", "full"]
    payment_intent_id: str | None
    last_payment_error: str | None
    updated_at: str
    """ISO 8601 UTC, e.g. `2024-01-15T10:30:00.000Z`."""


class CancelPaymentIntentInput(msgspec.Struct, rename="camel", frozen=True):
    order_id: OrderId
    client_secret: ClientSecret | None = None
    """Only for a guest (no bearer token): the order's client secret."""


class CancelPaymentIntentResult(msgspec.Struct, rename="camel", frozen=True):
    order_id: str
    status: PaymentIntentStatus


class RefundInput(msgspec.Struct, rename="camel", frozen=True):
    order_id: OrderId
    amount: Amount | None = None
    """Minor units to refund; absent: everything not refunded yet."""
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    idempotency_key: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,200}$")] | None = None
    """Makes a retried request safe: the same key always means the same single refund."""


class RefundResult(msgspec.Struct, rename="camel", frozen=True):
    refund_id: str
    order_id: str
    amount: int
    currency: str
    status: str
    amount_refunded: int
    """The order's refunded total after this refund."""
    amount_remaining: int
    """What can still be refunded."""


class NativePayInput(msgspec.Struct, rename="camel", frozen=True):
    domain: Hostname


class NativePayAvailability(msgspec.Struct, rename="camel", frozen=True):
    """Whether Apple Pay / Google Pay are registered and active for a web domain at Stripe."""

    apple_pay: bool
    google_pay: bool


class PaymentQrCodeInput(msgspec.Struct, rename="camel", frozen=True):
    order_id: OrderId
    client_secret: ClientSecret | None = None
    """Only for a guest (no bearer token): the order's client secret."""


class PaymentQrCode(msgspec.Struct, rename="camel", frozen=True):
    """Proof of a paid order, to show at a counter or a door: staff scan it (`verifyPaymentQrCode`)."""

    order_id: str
    token: str
    """What the QR code holds: a signed token naming the order, and nothing personal."""
    svg: str
    """The QR code as a standalone, scalable SVG document."""


class VerifyPaymentQrCodeInput(msgspec.Struct, rename="camel", frozen=True):
    token: Annotated[str, Meta(min_length=1, max_length=4096, description="The scanned QR code's text")]


QrRefusal = Literal[
    "malformed", "unknown_key", "bad_signature", "unknown_order", "not_paid", "refunded", "already_used"
]


class QrVerification(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """Whether a scanned QR code proves a payment now, and if not, why."""

    valid: bool
    reason: QrRefusal | None = None
    """Why not: not a payment QR code (`malformed`), signed by a key this gateway no longer holds
    (`unknown_key`), forged or altered (`bad_signature`), an order the gateway does not know (`unknown_order`),
    not paid (`not_paid`), fully refunded (`refunded`), or scanned before with single use on (`already_used`)."""
    order_id: str | None = None
    amount: int | None = None
    """What was paid, in the currency's minor unit."""
    currency: str | None = None
    amount_refunded: int | None = None
    redeemed_at: str | None = None
    """With single use: when the code was first scanned (ISO 8601 UTC)."""
