"""Where orders, payments, refunds and the audit trail are kept: the `Store` interface and `open_store`.

`open_store` picks the backend from the database URL (settings' `database_url`); the rest of the gateway only
ever sees `Store`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.store.base import (
    OrderNotFound,
    RefundInProgress,
    StaleOrder,
    Store,
    StoreError,
    StoreUnavailable,
)
from gateway.store.models import (
    MAINTENANCE_OFF,
    AuditEntry,
    Customer,
    Maintenance,
    NewOrder,
    Order,
    OrderEffect,
    OrderUpdate,
    PaymentIntentRecord,
    PaymentStatus,
    QrRedemption,
    Refund,
    RefundRequest,
    RefundRequestStatus,
    WebhookEvent,
    WebhookEventStatus,
)

__all__ = [
    "MAINTENANCE_OFF",
    "AuditEntry",
    "Customer",
    "Maintenance",
    "NewOrder",
    "Order",
    "OrderEffect",
    "OrderNotFound",
    "OrderUpdate",
    "PaymentIntentRecord",
    "PaymentStatus",
    "QrRedemption",
    "Refund",
    "RefundInProgress",
    "RefundRequest",
    "RefundRequestStatus",
    "StaleOrder",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WebhookEvent",
    "WebhookEventStatus",
    "open_store",
    "sqlite_path",
]

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(database_url: str) -> Path:
    """The file of a `sqlite:///relative/path` or `sqlite:////absolute/path` URL.

    Raises ValueError, naming the scheme, for any other URL (PostgreSQL is not supported yet).
    """
    scheme, separator, _ = database_url.partition("://")
    if not separator:
        raise ValueError(f"not a database URL (expected sqlite:///path): {database_url!r}")
    if scheme != "sqlite":
        raise ValueError(f"unsupported database scheme {scheme!r}: only sqlite:///path is supported for now")
    if not database_url.startswith(_SQLITE_PREFIX) or database_url == _SQLITE_PREFIX:
        raise ValueError(
            f"a SQLite URL names a file: sqlite:///relative/path or sqlite:////absolute/path, not {database_url!r}"
        )
    return Path(database_url.removeprefix(_SQLITE_PREFIX))


async def open_store(database_url: str) -> Store:
    """Open the store at `database_url`, creating the SQLite file's directory if needed and migrating the schema.

    The caller closes it (`await store.close()`).
    """
    path = sqlite_path(database_url)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    # Imported here so that choosing a backend loads only that backend's driver.
    from gateway.store.sqlite import SqliteStore

    return await SqliteStore.open(path)
