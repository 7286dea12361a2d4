"""The store's one interface: every backend (SQLite now, PostgreSQL next) implements `Store`.

Each method is one explicit transaction: it either happens whole (the row, its history and its audit line) or not
at all. Concurrency is settled by the database (primary keys, unique constraints, versioned updates), never by
locks inside one process, so the same guarantees hold when several gateway processes share one database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.store.models import (
    AuditEntry,
    Customer,
    Maintenance,
    NewOrder,
    Order,
    OrderEffect,
    OrderUpdate,
    PaymentIntentRecord,
    QrRedemption,
    Refund,
    RefundRequest,
    RefundRequestStatus,
    WebhookEvent,
    WebhookEventStatus,
)

__all__ = [
    "OrderNotFound",
    "RefundInProgress",
    "StaleOrder",
    "Store",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy past its timeout: a transient failure, worth a retry. A write
    that raised it may still have been committed (its answer was lost): retries decide again from what the store
    then holds, as every caller's version checks and unique keys already make them."""


class OrderNotFound(StoreError):
    pass


class StaleOrder(StoreError):
    """The order changed since it was read (its version moved): read it again and decide again."""


class RefundInProgress(StoreError):
    """Another refund request of the order is still pending: settle it first."""


class Store(Protocol):
    """Orders and their payment intents, refunds and refund requests, customers and the audit trail."""

    applied_migrations: tuple[int, ...]
    """The migrations this instance applied as it opened the store (none when the schema was up to date, or when
    it was opened without migrating)."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def ping(self) -> None:
        """A cheap round trip to the database; raises StoreUnavailable when it fails."""

    # -- orders ------------------------------------------------------------------------------------------------

    async def create_order(self, new: NewOrder, audit: AuditEntry) -> tuple[Order, bool]:
        """Insert the order unless one with that id exists. Returns the order as stored and whether this call
        created it (`audit` is written only then). Concurrent calls for one id: exactly one creates it."""
        ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def find_order_by_payment_intent(self, payment_intent_id: str) -> Order | None:
        """The order whose PaymentIntent history holds this id (current or replaced)."""
        ...

    async def update_order(
        self,
        order_id: str,
        expected_version: int,
        update: OrderUpdate,
        audit: AuditEntry,
        intent: PaymentIntentRecord | None = None,
    ) -> Order:
        """Apply `update` if the order is still at `expected_version` (then version + 1, `updated_at` now), upsert
        `intent` into the order's PaymentIntent history (by id), and write `audit` — all in one transaction.
        Raises StaleOrder if the version moved, OrderNotFound if there is no such order."""
        ...

    async def raise_amount_refunded(
        self, order_id: str, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        """Set the order's refunded amount to `max(current, amount_refunded)`: refund totals only grow, so a late
        or repeated report can never lower them. Writes `audit` only if the amount changed. Returns the order and
        how much its refunded total rose (0: it did not). OrderNotFound if none."""
        ...

    async def list_payment_intents(self, order_id: str) -> list[PaymentIntentRecord]:
        """Oldest first."""
        ...

    # -- refunds -----------------------------------------------------------------------------------------------

    async def add_refund(self, refund: Refund, audit: AuditEntry) -> bool:
        """Record a refund Stripe made; False (and no audit) if its id is already recorded."""
        ...

    async def list_refunds(self, order_id: str) -> list[Refund]:
        """Oldest first."""
        ...

    # -- refund requests ---------------------------------------------------------------------------------------

    async def start_refund_request(
        self, request: RefundRequest, audit: AuditEntry
    ) -> tuple[RefundRequest, bool]:
        """Insert a `pending` request, unless its caller key is known or the order already has a pending request:
        then returns that one and False (no audit). Exactly one of concurrent calls, in any process, starts."""
        ...

    async def get_refund_request(self, *, caller_key: str) -> RefundRequest | None: ...

    async def get_pending_refund_request(self, order_id: str) -> RefundRequest | None: ...

    async def finish_refund_request(
        self, request_id: str, refund: Refund, result: bytes, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        """In one transaction: record `refund` (kept if already recorded, now linked to the request), mark the
        request succeeded with `result` (if still pending), raise the order's refunded total to `amount_refunded`
        (never lowered), write `audit`. Returns the order and how much its refunded total rose (0: a webhook had
        raised it already)."""
        ...

    async def close_refund_request(
        self, request_id: str, status: RefundRequestStatus, error: str, audit: AuditEntry
    ) -> RefundRequest:
        """Mark a pending request refused or abandoned (no-op, no audit, if it is no longer pending)."""
        ...

    async def retry_refund_request(self, request_id: str, amount: int, audit: AuditEntry) -> RefundRequest:
        """An abandoned request becomes pending again for `amount`, its `tries` bumped. Raises RefundInProgress
        if the order has another pending request (and StoreError if this one is not abandoned)."""
        ...

    # -- customers ---------------------------------------------------------------------------------------------

    async def get_customer(self, email_hash: str) -> Customer | None: ...

    async def add_customer(self, customer: Customer) -> Customer:
        """Insert unless that e-mail hash is known; returns the stored one (the first writer wins)."""
        ...

    # -- webhook events ----------------------------------------------------------------------------------------

    async def record_webhook_event(self, event: WebhookEvent) -> tuple[WebhookEvent, bool]:
        """Insert the event (status `received`, one delivery), or count one more delivery of a known one. Returns
        the event as stored and whether this call inserted it. Durable once it returns."""
        ...

    async def get_webhook_event(self, event_id: str) -> WebhookEvent | None: ...

    async def list_webhook_events(
        self, *, limit: int = 50, order_id: str | None = None, status: WebhookEventStatus | None = None
    ) -> list[WebhookEvent]:
        """Newest received first."""
        ...

    async def apply_webhook_event(
        self, event_id: str, order_id: str, effect_of: Callable[[Order], OrderEffect], *, again: bool = False
    ) -> tuple[Order, OrderEffect | None]:
        """In one transaction: unless the event was already applied or ignored (and not `again`), read the order,
        call `effect_of(order)` (pure, no I/O), write that effect (order update, intent history, refunded total,
        audit when the order changed) and mark the event applied to the order, with the effect's note (a replay of
        an applied event that changed nothing leaves the event as its first application left it). Returns the
        order as it is now and the effect, or None when nothing was done. OrderNotFound if no such order;
        StoreError if no such event."""
        ...

    async def receive_webhook_event(
        self, event: WebhookEvent, order_id: str, effect_of: Callable[[Order], OrderEffect]
    ) -> tuple[WebhookEvent, Order, OrderEffect | None]:
        """`record_webhook_event` and then `apply_webhook_event` (not `again`) in one transaction: the common case
        of a delivery, in one commit. Returns the event as recorded (before it was applied), the order and the
        effect (None: an earlier delivery had applied or ignored it). If applying raises (OrderNotFound…),
        nothing at all is recorded: the caller records the event on its own and reports why."""
        ...

    async def ignore_webhook_event(self, event_id: str, note: str, *, again: bool = False) -> bool:
        """Mark a `received` event (any event, when `again`) ignored with `note`; False if it was not."""
        ...

    async def note_webhook_event_failure(self, event_id: str, note: str) -> None:
        """Keep why applying a still-`received` event failed, for the operator (it stays `received`)."""
        ...

    # -- maintenance -------------------------------------------------------------------------------------------

    async def get_maintenance(self) -> Maintenance:
        """The switch as stored (MAINTENANCE_OFF if never switched)."""
        ...

    async def set_maintenance(self, enabled: bool, message: str, audit: AuditEntry) -> Maintenance:
        """Switch on or off with `message`, in one transaction with `audit` (`audit.actor` is recorded as who
        switched it). Returns the switch as stored."""
        ...

    # -- QR codes ----------------------------------------------------------------------------------------------

    async def redeem_qr(self, redemption: QrRedemption, audit: AuditEntry) -> tuple[QrRedemption, bool]:
        """Record the first scan of an order's QR code (with `audit`, in one transaction); if the order's code was
        scanned before, leave that record. Returns the stored record and whether this call wrote it."""
        ...

    # -- audit -------------------------------------------------------------------------------------------------

    async def list_audit(self, order_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; all orders when `order_id` is None."""
        ...
