"""The records the store keeps. Money is an integer in the currency's minor unit; times are UTC ISO-8601 strings
with milliseconds and `Z` (`2024-01-15T10:30:00.000Z`), which sort as text in both backends."""

from __future__ import annotations

import enum

import msgspec

__all__ = [
    "AuditEntry",
    "Customer",
    "NewOrder",
    "Order",
    "OrderEffect",
    "OrderUpdate",
    "PaymentIntentRecord",
    "PaymentStatus",
    "QrRedemption",
    "Refund",
    "RefundRequest",
    "RefundRequestStatus",
    "WebhookEvent",
    "WebhookEventStatus",
]


class PaymentStatus(enum.StrEnum):
    """An order's payment status: the status of its current Stripe PaymentIntent, plus `creating` for the moment
    between the order row's first write and Stripe's answer."""

    CREATING = "creating"
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class WebhookEventStatus(enum.StrEnum):
    RECEIVED = "received"
    """Recorded, not applied yet (or its application failed and will be retried)."""
    APPLIED = "applied"
    IGNORED = "ignored"
    """Recorded and deliberately not applied (unknown type, not our object, permanently unusable)."""


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """One order of the app and the state of its payment."""

    order_id: str
    amount: int
    currency: str
    """Lower-case ISO 4217, as Stripe writes it."""
    status: PaymentStatus
    payment_intent_id: str | None
    """The order's current (live or last) PaymentIntent."""
    customer_id: str | None
    amount_received: int
    amount_refunded: int
    """Cumulative, from Stripe's charge (`amount_refunded`), never a sum of deliveries."""
    attempt: int
    """1 for the first PaymentIntent; bumped when a canceled intent is replaced. With `nonce`, forms the
    idempotency keys sent to Stripe, so retries of one attempt can never create a second intent."""
    nonce: str
    """Random, chosen when the order row is first written: keeps idempotency keys unique across databases."""
    owner: str | None
    """Who created the order (the caller's user id once authentication exists)."""
    last_error: str | None
    """The last payment error Stripe reported (code and message), cleared on success."""
    version: int
    """Incremented by every update: updates name the version they read (optimistic concurrency)."""
    created_at: str
    updated_at: str


class NewOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    amount: int
    currency: str
    nonce: str
    owner: str | None = None
    customer_id: str | None = None


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """The fields an update changes; UNSET fields are left alone."""

    amount: int | msgspec.UnsetType = msgspec.UNSET
    status: PaymentStatus | msgspec.UnsetType = msgspec.UNSET
    payment_intent_id: str | msgspec.UnsetType | None = msgspec.UNSET
    customer_id: str | msgspec.UnsetType | None = msgspec.UNSET
    amount_received: int | msgspec.UnsetType = msgspec.UNSET
    amount_refunded: int | msgspec.UnsetType = msgspec.UNSET
    attempt: int | msgspec.UnsetType = msgspec.UNSET
    last_error: str | msgspec.UnsetType | None = msgspec.UNSET


class PaymentIntentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Every PaymentIntent ever made for an order (the order points at the current one)."""

    id: str
    order_id: str
    attempt: int
    amount: int
    currency: str
    status: str
    created_at: str
    updated_at: str
    client_secret_sha256: str | None = None
    """SHA-256 (hex) of the intent's client secret: how a guest proves the order is theirs. Kept once known."""


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """Stripe's refund id (`re_…`)."""
    order_id: str
    payment_intent_id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    requested_by: str
    """Who asked: the caller's id, an operator, or `stripe` for a refund made outside the gateway."""
    refund_request_id: str | None
    """The gateway's request that made it (None for a refund made outside the gateway, e.g. in the Dashboard)."""
    created_at: str


class RefundRequestStatus(enum.StrEnum):
    PENDING = "pending"
    """Written before Stripe is asked; stays so while Stripe's answer is unknown (a timeout, a crash)."""
    SUCCEEDED = "succeeded"
    """Stripe made the refund (`refund_id`, `result`)."""
    REFUSED = "refused"
    """Stripe refused it for good (`error`): a retry with the same caller key gets the same refusal, as on Stripe."""
    ABANDONED = "abandoned"
    """Stripe never made it (not found there once the call could no longer be in flight): safe to try again."""


class RefundRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One refund asked of the gateway, recorded before Stripe is called so that a lost answer is never a second
    refund: Stripe's idempotency key and the refund's metadata name `id`, so a `pending` request can be settled by
    finding its refund at Stripe."""

    id: str
    order_id: str
    caller_key: str | None
    """The caller's idempotency key: the same key always means this one refund."""
    fingerprint: str
    """A hash of what was asked (order, amount or `the rest`, reason): a key reused for another request is refused."""
    requested_amount: int | None
    """What the caller asked for; None: all that is left."""
    amount: int
    """What Stripe is asked to refund (all that is left is resolved to an amount before each try)."""
    reason: str | None
    requested_by: str
    request_id: str | None
    status: RefundRequestStatus
    tries: int
    """Bumped when an abandoned request is tried again (a new Stripe idempotency key per try)."""
    refund_id: str | None
    result: bytes | None
    """The answer given to the caller, encoded, once succeeded: replayed to retries."""
    error: str | None
    """Why Stripe refused it (`CODE: message`), or why it was abandoned."""
    created_at: str
    updated_at: str


class Maintenance(msgspec.Struct, frozen=True, kw_only=True):
    """The maintenance switch: while `enabled`, payment mutations are refused with `message`."""

    enabled: bool
    message: str
    changed_at: str
    """When it was last switched (empty: never)."""
    changed_by: str
    """Who switched it (`operator:<login>`; empty: never switched)."""


class QrRedemption(msgspec.Struct, frozen=True, kw_only=True):
    """The first scan of an order's payment QR code, when codes are single use."""

    order_id: str
    key_id: str
    """Which QR_SECRET key signed the scanned code."""
    redeemed_at: str
    redeemed_by: str
    """The staff member's actor id (`user:<sub>`)."""
    request_id: str | None


MAINTENANCE_OFF = Maintenance(enabled=False, message="", changed_at="", changed_by="")
"""The switch as it is before anyone turns it on."""


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe Customer we created, found again by a hash of the e-mail (the address itself is not stored)."""

    email_hash: str
    customer_id: str
    created_at: str


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """Stripe's event id (`evt_…`): one row per event, whatever the number of deliveries."""
    type: str
    created: int
    """Stripe's `created` (Unix seconds)."""
    payload: bytes
    """The raw body as signed by Stripe."""
    status: WebhookEventStatus
    received_at: str
    applied_at: str | None
    deliveries: int
    note: str | None
    """What applying it did or why it was ignored, or the last error applying it."""
    order_id: str | None = None
    """The order it was applied to (None until applied, or when it is not about one of ours)."""


class OrderEffect(msgspec.Struct, frozen=True, kw_only=True):
    """What applying one webhook event does to its order, decided from the order as read inside the transaction
    that applies it (so no concurrent change can slip in between)."""

    note: str
    """What it did, or why it did nothing: kept on the event for the operator."""
    update: OrderUpdate | None = None
    intent: PaymentIntentRecord | None = None
    """Upserted into the order's PaymentIntent history."""
    amount_refunded: int | None = None
    """The order's refunded total is raised to this (never lowered)."""
    refunded_now: int = 0
    """How much more than before is refunded (amount_refunded minus the order's total when it was read)."""
    audit: AuditEntry | None = None
    """Written when the order changed."""


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the audit trail: what changed, when, by whom, from which request."""

    action: str
    """e.g. `order.created`, `order.amount_changed`, `payment_intent.created`, `refund.created`."""
    actor: str
    """The caller's id, `operator:<name>` for commands, `stripe` for webhooks, `anonymous` otherwise."""
    request_id: str | None
    order_id: str | None
    details: dict[str, object] = msgspec.field(default_factory=dict)
    at: str = ""
    """Filled by the store when written, if empty."""
    id: int | None = None
    """Filled by the store."""
