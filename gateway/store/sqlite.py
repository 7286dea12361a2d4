"""The SQLite backend of `Store`, on aiosqlite: one connection, one explicit transaction per method.

Each method's transaction is one synchronous function (`work`) that runs whole on the thread aiosqlite keeps for
the connection: BEGIN, its statements, COMMIT (or ROLLBACK if it raises), in a single hand-off to that thread
rather than one per statement (see `_on_connection_thread` for why). The thread runs its queue first in, first
out, so two tasks' transactions can never interleave on the connection, and a task cancelled while it waits
leaves its transaction to finish (commit or roll back) whole, before the next one begins.

Nothing is decided in Python memory. Who created an order, whether a version is still current, which refund of an
order is in flight: the database settles those (primary keys, `ON CONFLICT`, `UPDATE … WHERE version = ?` and the
row count), so two processes on one file keep the same guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, TypeVar, cast

import aiosqlite
import msgspec

from gateway.codec import js_iso
from gateway.store import rows as row_codec
from gateway.store import statements
from gateway.store.base import (
    OrderNotFound,
    RefundInProgress,
    StaleOrder,
    StoreError,
    StoreUnavailable,
)
from gateway.store.migrations import apply_migrations, check_schema
from gateway.store.models import (
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

__all__ = ["BUSY_TIMEOUT_MS", "Clock", "SqliteStore", "utc_now"]

BUSY_TIMEOUT_MS: Final = 5000
"""How long a statement waits for another connection's lock before the store reports StoreUnavailable."""

Clock = Callable[[], datetime.datetime]
"""Where the store reads the time (tests pass one that moves only when told)."""

_PRAGMAS: Final = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",  # durable across application crashes in WAL; a power cut may lose the last
    "PRAGMA foreign_keys = ON",  # off by default in SQLite, per connection
)
"""Per-connection settings, set on every open (journal_mode=WAL is set apart: see `_enable_wal`)."""

_UNAVAILABLE_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
"""Primary result codes of transient trouble (busy, locked, I/O, disk full): worth a retry, not a bug."""

_CLOSED_MESSAGES: Final = frozenset({"Connection closed", "no active connection"})
"""What aiosqlite raises (as ValueError) when used after close."""

_S = TypeVar("_S", bound=msgspec.Struct)
_T = TypeVar("_T")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SqliteStore:
    """`Store` on one SQLite file. Share one instance between tasks; open it with `SqliteStore.open`."""

    def __init__(self, connection: aiosqlite.Connection, clock: Clock = utc_now) -> None:
        """Wrap a connection already set up by `open` (autocommit mode, pragmas, migrations)."""
        self._connection: aiosqlite.Connection | None = connection
        self._clock = clock
        self.applied_migrations: tuple[int, ...] = ()

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        migrate: bool = True,
        contract: bool = False,
    ) -> SqliteStore:
        """Open (creating if needed) the database at `path`, set the pragmas and apply the migrations, contract
        ones only with `contract=True` (or, with `migrate=False`, only check that this gateway can run on its
        schema as it is)."""
        try:
            # isolation_level=None: no implicit transactions; every BEGIN and COMMIT here is explicit.
            connection = await aiosqlite.connect(
                os.fspath(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except sqlite3.Error as error:
            raise _translate_sqlite(error) from error
        try:
            for pragma in _PRAGMAS:
                await connection.execute(pragma)
            await _enable_wal(connection)
            applied: list[int] = []
            if migrate:
                applied = await apply_migrations(connection, lambda: js_iso(clock()), contract=contract)
            else:
                await check_schema(connection)
        except BaseException as error:
            await connection.close()
            if isinstance(error, sqlite3.Error):
                raise _translate_sqlite(error) from error
            raise
        store = cls(connection, clock)
        store.applied_migrations = tuple(applied)
        return store

    async def close(self) -> None:
        """Close the connection once the transactions already queued are over; later calls get StoreUnavailable.
        Idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def ping(self) -> None:
        await self._in_transaction(lambda db: _fetch(db, "SELECT 1", ()), write=False)

    # -- orders ------------------------------------------------------------------------------------------------

    async def create_order(self, new: NewOrder, audit: AuditEntry) -> tuple[Order, bool]:
        now = self._now()
        order = Order(
            order_id=new.order_id,
            amount=new.amount,
            currency=new.currency,
            status=PaymentStatus.CREATING,
            payment_intent_id=None,
            customer_id=new.customer_id,
            amount_received=0,
            amount_refunded=0,
            attempt=1,
            nonce=new.nonce,
            owner=new.owner,
            last_error=None,
            version=1,
            created_at=now,
            updated_at=now,
        )
        order_row = row_codec.row(order, statements.ORDER_COLUMNS)
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> tuple[Order, bool]:
            created = _execute(db, statements.INSERT_ORDER, order_row) == 1
            if created:
                _execute(db, statements.INSERT_AUDIT, audit_row)
            stored = _fetch_order(db, new.order_id)
            if (
                stored is None
            ):  # pragma: no cover - the row was inserted or already there, in this transaction
                raise StoreError(f"order {new.order_id} is missing right after its insert")
            return stored, created

        return await self._in_transaction(work, write=True)

    async def get_order(self, order_id: str) -> Order | None:
        return await self._in_transaction(lambda db: _fetch_order(db, order_id), write=False)

    async def find_order_by_payment_intent(self, payment_intent_id: str) -> Order | None:
        def work(db: sqlite3.Connection) -> Order | None:
            rows = _fetch(db, "SELECT order_id FROM payment_intents WHERE id = ?", (payment_intent_id,))
            if rows:
                return _fetch_order(db, str(rows[0][0]))
            # The current intent is normally in the history too; this covers an update that set only the pointer.
            rows = _fetch(db, statements.SELECT_ORDER_BY_INTENT, (payment_intent_id,))
            return row_codec.decode(rows[0], statements.ORDER_COLUMNS, Order) if rows else None

        return await self._in_transaction(work, write=False)

    async def update_order(
        self,
        order_id: str,
        expected_version: int,
        update: OrderUpdate,
        audit: AuditEntry,
        intent: PaymentIntentRecord | None = None,
    ) -> Order:
        if intent is not None and intent.order_id != order_id:
            raise ValueError(f"payment intent {intent.id} is for order {intent.order_id}, not {order_id}")
        now = self._now()
        sql, params = _update_order_sql(update, now, order_id)
        sql += " AND version = ?"
        params.append(expected_version)
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> Order:
            if _execute(db, sql, params) == 0:
                current = _fetch_order(db, order_id)
                if current is None:
                    raise OrderNotFound(order_id)
                raise StaleOrder(f"order {order_id} is at version {current.version}, not {expected_version}")
            if intent is not None:
                _upsert_intent(db, intent, now)
            _execute(db, statements.INSERT_AUDIT, audit_row)
            return _fetch_existing_order(db, order_id)

        return await self._in_transaction(work, write=True)

    async def raise_amount_refunded(
        self, order_id: str, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        now = self._now()
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> tuple[Order, int]:
            before = _fetch_existing_order(db, order_id).amount_refunded
            if _raise_refunded(db, order_id, amount_refunded, now):
                _execute(db, statements.INSERT_AUDIT, audit_row)
            order = _fetch_existing_order(db, order_id)
            return order, order.amount_refunded - before

        return await self._in_transaction(work, write=True)

    async def list_payment_intents(self, order_id: str) -> list[PaymentIntentRecord]:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_INTENTS, (order_id,)), write=False
        )
        return [row_codec.decode(row, statements.INTENT_COLUMNS, PaymentIntentRecord) for row in rows]

    # -- refunds -----------------------------------------------------------------------------------------------

    async def add_refund(self, refund: Refund, audit: AuditEntry) -> bool:
        now = self._now()
        row = row_codec.row(
            msgspec.structs.replace(refund, created_at=refund.created_at or now), statements.REFUND_COLUMNS
        )
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> bool:
            added = _execute(db, statements.INSERT_REFUND, row) == 1
            if added:
                _execute(db, statements.INSERT_AUDIT, audit_row)
            return added

        return await self._in_transaction(work, write=True)

    async def list_refunds(self, order_id: str) -> list[Refund]:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_REFUNDS, (order_id,)), write=False
        )
        return [row_codec.decode(row, statements.REFUND_COLUMNS, Refund) for row in rows]

    # -- refund requests ---------------------------------------------------------------------------------------

    async def start_refund_request(
        self, request: RefundRequest, audit: AuditEntry
    ) -> tuple[RefundRequest, bool]:
        if request.status is not RefundRequestStatus.PENDING:
            raise ValueError(f"a refund request starts pending, not {request.status.value}")
        now = self._now()
        row = row_codec.row(
            msgspec.structs.replace(request, created_at=now, updated_at=now),
            statements.REFUND_REQUEST_COLUMNS,
        )
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> tuple[RefundRequest, bool]:
            if _execute(db, statements.INSERT_REFUND_REQUEST, row) == 1:
                _execute(db, statements.INSERT_AUDIT, audit_row)
                return _fetch_refund_request(db, statements.SELECT_REFUND_REQUEST, request.id), True
            rows: list[sqlite3.Row] = []
            if request.caller_key is not None:
                rows = _fetch(db, statements.SELECT_REFUND_REQUEST_BY_KEY, (request.caller_key,))
            if not rows:
                rows = _fetch(db, statements.SELECT_PENDING_REFUND_REQUEST, (request.order_id,))
            if not rows:  # the id itself collided: ids are random, so this is a bug of the caller
                raise StoreError(f"refund request {request.id} already exists")
            return row_codec.decode(rows[0], statements.REFUND_REQUEST_COLUMNS, RefundRequest), False

        return await self._in_transaction(work, write=True)

    async def get_refund_request(self, *, caller_key: str) -> RefundRequest | None:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_REFUND_REQUEST_BY_KEY, (caller_key,)), write=False
        )
        return row_codec.decode(rows[0], statements.REFUND_REQUEST_COLUMNS, RefundRequest) if rows else None

    async def get_pending_refund_request(self, order_id: str) -> RefundRequest | None:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_PENDING_REFUND_REQUEST, (order_id,)), write=False
        )
        return row_codec.decode(rows[0], statements.REFUND_REQUEST_COLUMNS, RefundRequest) if rows else None

    async def finish_refund_request(
        self, request_id: str, refund: Refund, result: bytes, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        now = self._now()
        refund_row = row_codec.row(
            msgspec.structs.replace(
                refund, refund_request_id=request_id, created_at=refund.created_at or now
            ),
            statements.REFUND_COLUMNS,
        )
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> tuple[Order, int]:
            before = _fetch_existing_order(db, refund.order_id).amount_refunded
            _execute(db, statements.LINK_REFUND, refund_row)
            finished = _execute(
                db,
                "UPDATE refund_requests SET status = 'succeeded', refund_id = ?, result = ?, error = NULL,"
                " updated_at = ? WHERE id = ? AND status = 'pending'",
                (refund.id, result, now, request_id),
            )
            raised = _raise_refunded(db, refund.order_id, amount_refunded, now)
            if finished or raised:
                _execute(db, statements.INSERT_AUDIT, audit_row)
            order = _fetch_existing_order(db, refund.order_id)
            return order, order.amount_refunded - before

        return await self._in_transaction(work, write=True)

    async def close_refund_request(
        self, request_id: str, status: RefundRequestStatus, error: str, audit: AuditEntry
    ) -> RefundRequest:
        if status not in (RefundRequestStatus.REFUSED, RefundRequestStatus.ABANDONED):
            raise ValueError(f"a refund request closes refused or abandoned, not {status.value}")
        now = self._now()
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> RefundRequest:
            closed = _execute(
                db,
                "UPDATE refund_requests SET status = ?, error = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
                (status.value, error, now, request_id),
            )
            if closed:
                _execute(db, statements.INSERT_AUDIT, audit_row)
            return _fetch_refund_request(db, statements.SELECT_REFUND_REQUEST, request_id)

        return await self._in_transaction(work, write=True)

    async def retry_refund_request(self, request_id: str, amount: int, audit: AuditEntry) -> RefundRequest:
        now = self._now()
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> RefundRequest:
            request = _fetch_refund_request(db, statements.SELECT_REFUND_REQUEST, request_id)
            if request.status is not RefundRequestStatus.ABANDONED:
                raise StoreError(f"refund request {request_id} is {request.status.value}, not abandoned")
            # Checked inside the write transaction (BEGIN IMMEDIATE: no other writer meanwhile); the partial
            # unique index would refuse a second pending request anyway.
            if _fetch(db, statements.SELECT_PENDING_REFUND_REQUEST, (request.order_id,)):
                raise RefundInProgress(f"order {request.order_id} has a refund request pending")
            _execute(
                db,
                "UPDATE refund_requests SET status = 'pending', amount = ?, tries = tries + 1, error = NULL,"
                " updated_at = ? WHERE id = ?",
                (amount, now, request_id),
            )
            _execute(db, statements.INSERT_AUDIT, audit_row)
            return _fetch_refund_request(db, statements.SELECT_REFUND_REQUEST, request_id)

        return await self._in_transaction(work, write=True)

    # -- customers ---------------------------------------------------------------------------------------------

    async def get_customer(self, email_hash: str) -> Customer | None:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_CUSTOMER, (email_hash,)), write=False
        )
        return row_codec.decode(rows[0], statements.CUSTOMER_COLUMNS, Customer) if rows else None

    async def add_customer(self, customer: Customer) -> Customer:
        row = row_codec.row(
            msgspec.structs.replace(customer, created_at=customer.created_at or self._now()),
            statements.CUSTOMER_COLUMNS,
        )

        def work(db: sqlite3.Connection) -> list[sqlite3.Row]:
            _execute(db, statements.INSERT_CUSTOMER, row)
            return _fetch(db, statements.SELECT_CUSTOMER, (customer.email_hash,))

        rows = await self._in_transaction(work, write=True)
        return row_codec.decode(rows[0], statements.CUSTOMER_COLUMNS, Customer)

    # -- webhook events ----------------------------------------------------------------------------------------

    async def record_webhook_event(self, event: WebhookEvent) -> tuple[WebhookEvent, bool]:
        row = _received_event_row(event, self._now())
        stored = await self._in_transaction(lambda db: _record_event(db, row), write=True)
        return stored, stored.deliveries == 1

    async def get_webhook_event(self, event_id: str) -> WebhookEvent | None:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_EVENT, (event_id,)), write=False
        )
        return row_codec.decode(rows[0], statements.EVENT_COLUMNS, WebhookEvent) if rows else None

    async def list_webhook_events(
        self, *, limit: int = 50, order_id: str | None = None, status: WebhookEventStatus | None = None
    ) -> list[WebhookEvent]:
        if limit < 0:
            raise ValueError(f"limit must not be negative: {limit}")
        where, params = [], []
        if order_id is not None:
            where.append("order_id = ?")
            params.append(order_id)
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        sql = statements.select(
            "webhook_events",
            statements.EVENT_COLUMNS,
            f"{condition}ORDER BY received_at DESC, id DESC LIMIT ?",
        )
        rows = await self._in_transaction(lambda db: _fetch(db, sql, [*params, limit]), write=False)
        return [row_codec.decode(row, statements.EVENT_COLUMNS, WebhookEvent) for row in rows]

    async def apply_webhook_event(
        self, event_id: str, order_id: str, effect_of: Callable[[Order], OrderEffect], *, again: bool = False
    ) -> tuple[Order, OrderEffect | None]:
        now = self._now()
        return await self._in_transaction(
            lambda db: _apply_event(db, event_id, order_id, effect_of, again=again, now=now), write=True
        )

    async def receive_webhook_event(
        self, event: WebhookEvent, order_id: str, effect_of: Callable[[Order], OrderEffect]
    ) -> tuple[WebhookEvent, Order, OrderEffect | None]:
        now = self._now()
        row = _received_event_row(event, now)

        def work(db: sqlite3.Connection) -> tuple[WebhookEvent, Order, OrderEffect | None]:
            stored = _record_event(db, row)
            order, effect = _apply_event(db, event.id, order_id, effect_of, again=False, now=now)
            return stored, order, effect

        return await self._in_transaction(work, write=True)

    async def ignore_webhook_event(self, event_id: str, note: str, *, again: bool = False) -> bool:
        only_received = "" if again else " AND status = 'received'"
        sql = f"UPDATE webhook_events SET status = 'ignored', note = ? WHERE id = ?{only_received}"  # noqa: S608
        return await self._in_transaction(lambda db: _execute(db, sql, (note, event_id)) == 1, write=True)

    async def note_webhook_event_failure(self, event_id: str, note: str) -> None:
        await self._in_transaction(
            lambda db: _execute(
                db,
                "UPDATE webhook_events SET note = ? WHERE id = ? AND status = 'received'",
                (note, event_id),
            ),
            write=True,
        )

    # -- maintenance -------------------------------------------------------------------------------------------

    async def get_maintenance(self) -> Maintenance:
        rows = await self._in_transaction(
            lambda db: _fetch(db, statements.SELECT_MAINTENANCE, ()), write=False
        )
        return row_codec.maintenance(rows)

    async def set_maintenance(self, enabled: bool, message: str, audit: AuditEntry) -> Maintenance:
        now = self._now()
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> Maintenance:
            _execute(
                db,
                "INSERT INTO maintenance (id, enabled, message, changed_at, changed_by) VALUES (1, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, message = excluded.message,"
                " changed_at = excluded.changed_at, changed_by = excluded.changed_by",
                (enabled, message, now, audit.actor),
            )
            _execute(db, statements.INSERT_AUDIT, audit_row)
            return row_codec.maintenance(_fetch(db, statements.SELECT_MAINTENANCE, ()))

        return await self._in_transaction(work, write=True)

    # -- QR codes ----------------------------------------------------------------------------------------------

    async def redeem_qr(self, redemption: QrRedemption, audit: AuditEntry) -> tuple[QrRedemption, bool]:
        now = self._now()
        row = msgspec.structs.replace(redemption, redeemed_at=redemption.redeemed_at or now)
        audit_row = row_codec.audit_row(audit, now)

        def work(db: sqlite3.Connection) -> tuple[QrRedemption, bool]:
            first = (
                _execute(db, statements.INSERT_QR_REDEMPTION, row_codec.row(row, statements.QR_COLUMNS)) == 1
            )
            if first:
                _execute(db, statements.INSERT_AUDIT, audit_row)
            return row_codec.decode(
                _fetch(db, statements.SELECT_QR_REDEMPTION, (row.order_id,))[0],
                statements.QR_COLUMNS,
                QrRedemption,
            ), first

        return await self._in_transaction(work, write=True)

    # -- audit -------------------------------------------------------------------------------------------------

    async def list_audit(self, order_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit < 0:
            raise ValueError(f"limit must not be negative: {limit}")
        sql, params = (
            (statements.SELECT_AUDIT, [limit])
            if order_id is None
            else (statements.SELECT_AUDIT_OF_ORDER, [order_id, limit])
        )
        rows = await self._in_transaction(lambda db: _fetch(db, sql, params), write=False)
        return [row_codec.audit_entry(row) for row in rows]

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _now(self) -> str:
        return js_iso(self._clock())

    async def _in_transaction(self, work: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        """Run `work` as one whole transaction on the connection's thread: committed if it returns, rolled back if
        it raises. sqlite3 errors (and use after close) come out as StoreError / StoreUnavailable; the store's own
        errors (StaleOrder…) pass through, after the rollback."""
        connection = self._connection
        if connection is None:
            raise StoreUnavailable("the store is closed")
        try:
            return await _on_connection_thread(
                connection, functools.partial(_transact, connection, work, write)
            )
        except (sqlite3.Error, ValueError) as error:
            translated = _translate(error)
            if translated is None:
                raise
            raise translated from error


async def _enable_wal(connection: aiosqlite.Connection) -> None:
    """Switch the file to WAL (readers never block the writer, nor it them); it stays so for every later open.

    Two processes switching a fresh file at once: one gets SQLITE_BUSY at once, without the busy handler's wait
    (SQLite refuses to wait there, as that could deadlock). So the switch is retried here, for as long as
    busy_timeout would have waited.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            rows = list(await connection.execute_fetchall("PRAGMA journal_mode = WAL"))
            break
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    mode = str(rows[0][0]).lower()
    if mode != "wal":
        raise StoreError(
            f"the database cannot use WAL (journal_mode stays {mode!r}): is it on a network drive?"
        )


def _translate(error: BaseException) -> StoreError | None:
    """The store's error for a sqlite3/aiosqlite one; None for an error that is not the database's."""
    if isinstance(error, sqlite3.Error):
        return _translate_sqlite(error)
    if isinstance(error, ValueError) and str(error) in _CLOSED_MESSAGES:
        return StoreUnavailable("the store's connection is closed")
    return None


def _translate_sqlite(error: sqlite3.Error) -> StoreError:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _UNAVAILABLE_CODES:
        return StoreUnavailable(f"database unavailable: {error}")
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error):
        return StoreUnavailable(f"database unavailable: {error}")
    return StoreError(f"database error: {error}")


async def _on_connection_thread(connection: aiosqlite.Connection, function: Callable[[], _T]) -> _T:
    """Call `function` on the thread that owns `connection` (aiosqlite's one worker, first in, first out).

    aiosqlite's public methods each hand one statement to that thread and wait for it: about 85 µs of CPU per
    hand-off, which made a webhook's dozen statements cost more than everything else it does (bench/README.md,
    "Webhook ingestion"). `Connection._execute` is the method all of them go through; it is private, so this is
    the one place that calls it, and every store test breaks loudly if a new aiosqlite changes it.
    """
    hand_off = cast(Callable[[Callable[[], _T]], Awaitable[_T]], connection._execute)
    return await hand_off(function)


def _transact(connection: aiosqlite.Connection, work: Callable[[sqlite3.Connection], _T], write: bool) -> _T:
    """On the connection's thread: BEGIN, `work`, COMMIT, or ROLLBACK if anything raised.

    Writes begin with `BEGIN IMMEDIATE`, so a second writer (another process) waits for the write lock up front,
    for busy_timeout, instead of failing at its first write. Reads take a deferred transaction: a consistent
    snapshot that never blocks the writer (WAL).
    """
    db = connection._conn  # we are on its thread; raises ValueError once the connection is closed
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        # Nothing to undo when SQLite already rolled back (an I/O error, a full disk); the original error is the
        # one worth raising.
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return result


def _execute(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> int:
    """Run one statement; returns how many rows it changed."""
    return db.execute(sql, params).rowcount


def _fetch(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
    return db.execute(sql, params).fetchall()


def _fetch_order(db: sqlite3.Connection, order_id: str) -> Order | None:
    rows = _fetch(db, statements.SELECT_ORDER, (order_id,))
    return row_codec.decode(rows[0], statements.ORDER_COLUMNS, Order) if rows else None


def _fetch_existing_order(db: sqlite3.Connection, order_id: str) -> Order:
    order = _fetch_order(db, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


def _fetch_refund_request(db: sqlite3.Connection, sql: str, key: str) -> RefundRequest:
    rows = _fetch(db, sql, (key,))
    if not rows:
        raise StoreError(f"no refund request {key}")
    return row_codec.decode(rows[0], statements.REFUND_REQUEST_COLUMNS, RefundRequest)


def _upsert_intent(db: sqlite3.Connection, intent: PaymentIntentRecord, now: str) -> None:
    row = msgspec.structs.replace(
        intent, created_at=intent.created_at or now, updated_at=intent.updated_at or now
    )
    if _execute(db, statements.UPSERT_INTENT, row_codec.row(row, statements.INTENT_COLUMNS)) == 0:
        raise StoreError(f"payment intent {intent.id} is already recorded for another order")


def _raise_refunded(db: sqlite3.Connection, order_id: str, amount_refunded: int, now: str) -> bool:
    """Raise the order's refunded total to `amount_refunded`, never lower it; True if it changed."""
    return (
        _execute(
            db,
            "UPDATE orders SET amount_refunded = ?, version = version + 1, updated_at = ?"
            " WHERE order_id = ? AND amount_refunded < ?",
            (amount_refunded, now, order_id, amount_refunded),
        )
        == 1
    )


def _received_event_row(event: WebhookEvent, now: str) -> list[object]:
    received = msgspec.structs.replace(
        event,
        status=WebhookEventStatus.RECEIVED,
        received_at=now,
        applied_at=None,
        deliveries=1,
        order_id=None,
    )
    return row_codec.row(received, statements.EVENT_COLUMNS)


def _record_event(db: sqlite3.Connection, row: Sequence[object]) -> WebhookEvent:
    """Insert a delivery, or count one more of a known event; the event as stored."""
    [stored] = _fetch(db, statements.RECORD_EVENT, row)
    return row_codec.decode(stored, statements.EVENT_COLUMNS, WebhookEvent)


def _apply_event(
    db: sqlite3.Connection,
    event_id: str,
    order_id: str,
    effect_of: Callable[[Order], OrderEffect],
    *,
    again: bool,
    now: str,
) -> tuple[Order, OrderEffect | None]:
    """`Store.apply_webhook_event`, inside a write transaction."""
    rows = _fetch(db, "SELECT status FROM webhook_events WHERE id = ?", (event_id,))
    if not rows:
        raise StoreError(f"no webhook event {event_id}")
    order = _fetch_existing_order(db, order_id)
    was_applied = rows[0][0] == WebhookEventStatus.APPLIED.value
    if rows[0][0] != WebhookEventStatus.RECEIVED.value and not again:
        return order, None  # another delivery applied it meanwhile: exactly once
    effect = effect_of(order)
    changed = False
    if effect.update is not None:
        sql, params = _update_order_sql(effect.update, now, order_id)
        changed = _execute(db, sql, params) == 1
    if effect.intent is not None:
        if effect.intent.order_id != order_id:
            raise ValueError(f"payment intent {effect.intent.id} is for order {effect.intent.order_id}")
        _upsert_intent(db, effect.intent, now)
    if effect.amount_refunded is not None:
        changed |= _raise_refunded(db, order_id, effect.amount_refunded, now)
    if changed and effect.audit is not None:
        _execute(db, statements.INSERT_AUDIT, row_codec.audit_row(effect.audit, now))
    if changed or not was_applied:  # a replay that changed nothing keeps what the event did first
        _execute(
            db,
            "UPDATE webhook_events SET status = 'applied', applied_at = ?, order_id = ?, note = ? WHERE id = ?",
            (now, order_id, effect.note, event_id),
        )
    if changed:
        order = _fetch_existing_order(db, order_id)
    return order, effect


def _update_order_sql(update: OrderUpdate, now: str, order_id: str) -> tuple[str, list[object]]:
    """`UPDATE orders` for the fields `update` sets (plus version and updated_at), by order id."""
    changes: Mapping[str, object] = {
        field: value
        for field in row_codec.columns(OrderUpdate)
        if (value := getattr(update, field)) is not msgspec.UNSET
    }
    assignments = "".join(f"{column} = ?, " for column in changes)
    sql = (
        f"UPDATE orders SET {assignments}version = version + 1, updated_at = ?"  # noqa: S608 - model fields
        " WHERE order_id = ?"
    )
    return sql, [*map(row_codec.sql_value, changes.values()), now, order_id]
