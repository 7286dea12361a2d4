"""The store's one interface: every backend (SQLite now, PostgreSQL next) implements `Store`.

Each method is one explicit transaction: it either happens whole (the row, its history and its audit line) or not
at all. Concurrency is settled by the database (primary keys, unique constraints, versioned updates), never by
locks inside one process, so the same guarantees hold when several gateway processes share one database.
"""

from __future__ import annotations

from typing import Protocol

from gateway.store.models import (
    AuditEntry,
    Customer,
    IdempotencyRecord,
    NewOrder,
    Order,
    OrderUpdate,
    PaymentIntentRecord,
    Refund,
)

__all__ = [
    "IdempotencyMismatch",
    "OrderNotFound",
    "StaleOrder",
    "Store",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy past its timeout: a transient failure, worth a retry."""


class OrderNotFound(StoreError):
    pass


class StaleOrder(StoreError):
    """The order changed since it was read (its version moved): read it again and decide again."""


class IdempotencyMismatch(StoreError):
    """An idempotency key was reused with different request parameters."""


class Store(Protocol):
    """Orders and their payment intents, refunds, customers, idempotency records and the audit trail."""

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

    async def raise_amount_refunded(self, order_id: str, amount_refunded: int, audit: AuditEntry) -> Order:
        """Set the order's refunded amount to `max(current, amount_refunded)`: refund totals only grow, so a late
        or repeated report can never lower them. Writes `audit` only if the amount changed. OrderNotFound if none."""
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

    # -- customers ---------------------------------------------------------------------------------------------

    async def get_customer(self, email_hash: str) -> Customer | None: ...

    async def add_customer(self, customer: Customer) -> Customer:
        """Insert unless that e-mail hash is known; returns the stored one (the first writer wins)."""
        ...

    # -- idempotency -------------------------------------------------------------------------------------------

    async def claim_idempotency_key(
        self, key: str, operation: str, request_hash: str, ttl_seconds: int
    ) -> tuple[IdempotencyRecord, bool]:
        """Claim `key` for an operation. Returns the record and True if this call claimed it (the caller must
        then `complete_idempotency_key` or `release_idempotency_key`), or the existing record and False (done:
        `response` is set; in progress: `response` is None). An expired record is replaced as if absent.
        Raises IdempotencyMismatch if the key is held with another `request_hash`."""
        ...

    async def complete_idempotency_key(self, key: str, response: bytes) -> None: ...

    async def release_idempotency_key(self, key: str) -> None:
        """Forget an in-progress claim whose operation failed, so that a retry can run it again."""
        ...

    # -- audit -------------------------------------------------------------------------------------------------

    async def list_audit(self, order_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; all orders when `order_id` is None."""
        ...
