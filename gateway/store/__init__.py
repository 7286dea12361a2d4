"""Where orders, payments, refunds and the audit trail are kept: the `Store` interface and `open_store`.

`open_store` picks the backend from the database URL (settings' `database_url`): `sqlite:///path` (the default)
or `postgresql://…` (`postgres://…`); the rest of the gateway only ever sees `Store`.
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
    "is_postgres_url",
    "open_store",
    "sqlite_path",
]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def is_postgres_url(database_url: str) -> bool:
    """Whether `database_url` names a PostgreSQL database (`postgresql://…` or `postgres://…`)."""
    scheme, separator, _ = database_url.partition("://")
    return bool(separator) and scheme in _POSTGRES_SCHEMES


def sqlite_path(database_url: str) -> Path:
    """The file of a `sqlite:///relative/path` or `sqlite:////absolute/path` URL.

    Raises ValueError, naming the scheme, for any other URL (a PostgreSQL one included: it names no file).
    """
    scheme, separator, _ = database_url.partition("://")
    if not separator:
        raise ValueError(f"not a database URL (expected sqlite:///path or postgresql://…): {database_url!r}")
    if scheme != "sqlite":
        raise ValueError(
            f"unsupported database scheme {scheme!r}: expected sqlite:///path or postgresql://…"
            if scheme not in _POSTGRES_SCHEMES
            else f"a {scheme} URL names no SQLite file: {database_url!r}"
        )
    if not database_url.startswith(_SQLITE_PREFIX) or database_url == _SQLITE_PREFIX:
        raise ValueError(
            f"a SQLite URL names a file: sqlite:///relative/path or sqlite:////absolute/path, not {database_url!r}"
        )
    return Path(database_url.removeprefix(_SQLITE_PREFIX))


async def open_store(database_url: str, *, migrate: bool = True, contract: bool = False) -> Store:
    """Open the store at `database_url` and migrate its schema: a PostgreSQL database (which must exist), or a
    SQLite file (created, and its directory, if needed). A contract migration (one older gateways cannot run on)
    is applied to a database in use only with `contract=True` (`gateway db migrate`). With `migrate=False` (the
    operators' commands), the schema is only checked: StoreError unless this gateway can run on it as it is.

    The caller closes it (`await store.close()`).
    """
    # Imported here so that choosing a backend loads only that backend's driver.
    if is_postgres_url(database_url):
        from gateway.store.postgres import PostgresStore

        return await PostgresStore.open(database_url, migrate=migrate, contract=contract)
    path = sqlite_path(database_url)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    from gateway.store.sqlite import SqliteStore

    return await SqliteStore.open(path, migrate=migrate, contract=contract)
