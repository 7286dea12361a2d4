"""The SQL both store backends run, written once with `?` placeholders: SQLite takes it as it is, PostgreSQL
through `numbered` (`$1`, `$2`, …). Table and column names are the models' fields, never input.

Statements one backend needs alone (PostgreSQL's row locks, queries assembled per call) stay in that backend's
module.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Final

from gateway.store import rows
from gateway.store.models import (
    Customer,
    Order,
    PaymentIntentRecord,
    QrRedemption,
    Refund,
    RefundRequest,
    WebhookEvent,
)
from gateway.store.rows import columns

__all__ = [
    "AUDIT_COLUMNS",
    "CUSTOMER_COLUMNS",
    "EVENT_COLUMNS",
    "INSERT_AUDIT",
    "INSERT_CUSTOMER",
    "INSERT_ORDER",
    "INSERT_QR_REDEMPTION",
    "INSERT_REFUND",
    "INSERT_REFUND_REQUEST",
    "INTENT_COLUMNS",
    "LINK_REFUND",
    "ORDER_COLUMNS",
    "QR_COLUMNS",
    "RECORD_EVENT",
    "REFUND_COLUMNS",
    "REFUND_REQUEST_COLUMNS",
    "SELECT_AUDIT",
    "SELECT_AUDIT_OF_ORDER",
    "SELECT_CUSTOMER",
    "SELECT_EVENT",
    "SELECT_INTENTS",
    "SELECT_MAINTENANCE",
    "SELECT_ORDER",
    "SELECT_ORDER_BY_INTENT",
    "SELECT_PENDING_REFUND_REQUEST",
    "SELECT_QR_REDEMPTION",
    "SELECT_REFUNDS",
    "SELECT_REFUND_REQUEST",
    "SELECT_REFUND_REQUEST_BY_KEY",
    "UPSERT_INTENT",
    "insert",
    "numbered",
    "select",
]

_PLACEHOLDER: Final = re.compile(r"\?")


def numbered(sql: str) -> str:
    """`sql` with its `?` placeholders numbered for PostgreSQL: `$1`, `$2`, … in order. (None of these statements
    holds a `?` inside a string literal.)"""
    counter = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


ORDER_COLUMNS: Final = columns(Order)
INTENT_COLUMNS: Final = columns(PaymentIntentRecord)
REFUND_COLUMNS: Final = columns(Refund)
REFUND_REQUEST_COLUMNS: Final = columns(RefundRequest)
EVENT_COLUMNS: Final = columns(WebhookEvent)
CUSTOMER_COLUMNS: Final = columns(Customer)
QR_COLUMNS: Final = columns(QrRedemption)
AUDIT_COLUMNS: Final = rows.AUDIT_COLUMNS


def select(table: str, columns: Sequence[str], rest: str) -> str:
    # Table and column names are constants of this module (the models' fields), never input.
    return f"SELECT {', '.join(columns)} FROM {table} {rest}"  # noqa: S608


def insert(table: str, columns: Sequence[str], conflict: str) -> str:
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) {conflict}"  # noqa: S608


SELECT_ORDER: Final = select("orders", ORDER_COLUMNS, "WHERE order_id = ?")
SELECT_ORDER_BY_INTENT: Final = select("orders", ORDER_COLUMNS, "WHERE payment_intent_id = ?")
INSERT_ORDER: Final = insert("orders", ORDER_COLUMNS, "ON CONFLICT (order_id) DO NOTHING")
UPSERT_INTENT: Final = insert(
    "payment_intents",
    INTENT_COLUMNS,
    # An id already recorded for another order is left alone (the row count says so, and the caller fails).
    "ON CONFLICT (id) DO UPDATE SET attempt = excluded.attempt, amount = excluded.amount,"
    " currency = excluded.currency, status = excluded.status, updated_at = excluded.updated_at,"
    " client_secret_sha256 = COALESCE(payment_intents.client_secret_sha256, excluded.client_secret_sha256)"
    " WHERE payment_intents.order_id = excluded.order_id",
)
SELECT_INTENTS: Final = select(
    "payment_intents", INTENT_COLUMNS, "WHERE order_id = ? ORDER BY created_at, attempt, id"
)
INSERT_QR_REDEMPTION: Final = insert("qr_redemptions", QR_COLUMNS, "ON CONFLICT (order_id) DO NOTHING")
SELECT_QR_REDEMPTION: Final = select("qr_redemptions", QR_COLUMNS, "WHERE order_id = ?")
INSERT_REFUND: Final = insert("refunds", REFUND_COLUMNS, "ON CONFLICT (id) DO NOTHING")
LINK_REFUND: Final = insert(
    "refunds",
    REFUND_COLUMNS,
    # Recorded first from elsewhere (a webhook): keep that row, and name the request that made it.
    "ON CONFLICT (id) DO UPDATE SET refund_request_id = excluded.refund_request_id"
    " WHERE refunds.refund_request_id IS NULL",
)
# No conflict target: either uniqueness (the caller's key, or the order's one pending request) makes it a no-op.
INSERT_REFUND_REQUEST: Final = insert("refund_requests", REFUND_REQUEST_COLUMNS, "ON CONFLICT DO NOTHING")
SELECT_REFUND_REQUEST: Final = select("refund_requests", REFUND_REQUEST_COLUMNS, "WHERE id = ?")
SELECT_REFUND_REQUEST_BY_KEY: Final = select(
    "refund_requests", REFUND_REQUEST_COLUMNS, "WHERE caller_key = ?"
)
SELECT_PENDING_REFUND_REQUEST: Final = select(
    "refund_requests", REFUND_REQUEST_COLUMNS, "WHERE order_id = ? AND status = 'pending'"
)
SELECT_REFUNDS: Final = select("refunds", REFUND_COLUMNS, "WHERE order_id = ? ORDER BY created_at, id")
INSERT_CUSTOMER: Final = insert("customers", CUSTOMER_COLUMNS, "ON CONFLICT (email_hash) DO NOTHING")
SELECT_CUSTOMER: Final = select("customers", CUSTOMER_COLUMNS, "WHERE email_hash = ?")
RECORD_EVENT: Final = (
    insert(
        "webhook_events",
        EVENT_COLUMNS,
        "ON CONFLICT (id) DO UPDATE SET deliveries = webhook_events.deliveries + 1",
    )
    + " RETURNING "
    + ", ".join(EVENT_COLUMNS)
)
SELECT_EVENT: Final = select("webhook_events", EVENT_COLUMNS, "WHERE id = ?")
INSERT_AUDIT: Final = insert("audit_log", AUDIT_COLUMNS[1:], "")
SELECT_AUDIT: Final = select("audit_log", AUDIT_COLUMNS, "ORDER BY id DESC LIMIT ?")
SELECT_AUDIT_OF_ORDER: Final = select(
    "audit_log", AUDIT_COLUMNS, "WHERE order_id = ? ORDER BY id DESC LIMIT ?"
)

SELECT_MAINTENANCE: Final = "SELECT enabled, message, changed_at, changed_by FROM maintenance WHERE id = 1"
