"""The PostgreSQL backend of `Store`, on an asyncpg pool: each method is one atomic unit of work on one pooled
connection (a transaction, or a single statement, which is atomic on its own).

Several gateway processes share the database, so nothing is decided in Python memory. What SQLite settles by having
one writer at a time, PostgreSQL settles row by row, at READ COMMITTED:

- who creates a row: primary keys and unique indexes with `INSERT … ON CONFLICT` (a second inserter waits for the
  first to commit, then does nothing, and its next statement sees the winner's row);
- whether an order is still at a version: `UPDATE … WHERE version = $n` (a concurrent updater waits, then finds
  the version moved and changes nothing: StaleOrder);
- read-then-write steps (how much a refunded total rose, whether an event is still to apply, whether a refund
  request may be retried): the row is read `FOR NO KEY UPDATE` first, so concurrent ones take turns on it. It is
  the lock an UPDATE takes anyway, and unlike `FOR UPDATE` it lets foreign-key checks of new child rows through;
- at most one pending refund request per order: the partial unique index.

Reads of several statements run in a read-only REPEATABLE READ transaction (one snapshot for all of them, as in
SQLite); reads of one statement, and the writes that are one statement (an order's write together with its audit
line, as a data-modifying `WITH`), run without BEGIN and COMMIT. Round trips to the server are most of what the
store costs the event loop (bench/README.md, "Payment flow"), so they are kept few: a new order is one.

As with any database whose answer can be lost, a write interrupted by a timeout or a cancellation may have been
committed (as in SQLite, whose transactions run on to the end on their thread): callers decide again from what
the store then holds, and every write is safe to repeat (unique keys, version checks).

Values are stored as in SQLite (times are the same ISO text, money BIGINT, bytes BYTEA), so both backends hold the
same data. Connection trouble, timeouts and transient conflicts (deadlock, serialization) raise StoreUnavailable.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal, TypeVar

import asyncpg
import msgspec

from gateway.codec import js_iso
from gateway.store import statements
from gateway.store.base import (
    OrderNotFound,
    RefundInProgress,
    StaleOrder,
    StoreError,
    StoreUnavailable,
)
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
from gateway.store.postgres_migrations import PgConnection, apply_postgres_migrations, check_postgres_schema
from gateway.store.rows import (
    audit_entry,
    audit_row,
    decode,
    maintenance,
    order_changes,
    row,
)
from gateway.store.statements import numbered

__all__ = ["COMMAND_TIMEOUT_S", "CONNECT_TIMEOUT_S", "Clock", "PostgresStore", "utc_now"]

Clock = Callable[[], datetime.datetime]
"""Where the store reads the time (tests pass one that moves only when told). Defined here as in the SQLite
backend, so that this module does not load aiosqlite."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


CONNECT_TIMEOUT_S: Final = 5.0
"""How long opening a connection may take before the store reports StoreUnavailable."""

COMMAND_TIMEOUT_S: Final = 10.0
"""How long one statement (a lock wait included) may take before the store reports StoreUnavailable."""

_UNAVAILABLE_SQLSTATE_PREFIXES: Final = ("08", "40", "53", "57", "58", "55P03")
"""Transient trouble worth a retry: connection (08), transaction rollback (40: deadlock, serialization),
insufficient resources (53), operator intervention (57: shutdown, cancelled statement), system error (58), lock
not available (55P03)."""

_T = TypeVar("_T")
_Db = PgConnection

_SELECT_ORDER: Final = numbered(statements.SELECT_ORDER)
_SELECT_ORDER_BY_INTENT: Final = numbered(statements.SELECT_ORDER_BY_INTENT)
_RETURNING_ORDER: Final = " RETURNING " + ", ".join(statements.ORDER_COLUMNS)
"""Writes of an order hand back the row as written: no SELECT after them (one round trip fewer)."""


def _with_audit(write: str, parameters: int) -> str:
    """`write`, an INSERT or UPDATE of an order RETURNING its columns with `parameters` placeholders, and its audit
    line as ONE statement: the audit row is inserted only if `write` wrote a row, and the statement answers that
    row. A single statement is atomic on its own, so it needs no BEGIN and COMMIT: one round trip to the server
    instead of four (the round trips, not the SQL, are most of what the store costs the event loop)."""
    audit_columns = statements.AUDIT_COLUMNS[1:]  # the id is the database's
    values = ", ".join(f"${parameters + index}::text" for index in range(1, len(audit_columns) + 1))
    # Table and column names are this module's constants, and the values placeholders: nothing here is input.
    return (
        f"WITH written AS ({write}),"  # noqa: S608
        f" audited AS (INSERT INTO audit_log ({', '.join(audit_columns)}) SELECT {values} FROM written)"
        f" SELECT {', '.join(statements.ORDER_COLUMNS)} FROM written"
    )


_CREATE_ORDER: Final = _with_audit(
    numbered(statements.INSERT_ORDER) + _RETURNING_ORDER, len(statements.ORDER_COLUMNS)
)
_UPSERT_INTENT: Final = numbered(statements.UPSERT_INTENT)
_SELECT_INTENTS: Final = numbered(statements.SELECT_INTENTS)
_INSERT_QR_REDEMPTION: Final = numbered(statements.INSERT_QR_REDEMPTION)
_SELECT_QR_REDEMPTION: Final = numbered(statements.SELECT_QR_REDEMPTION)
_INSERT_REFUND: Final = numbered(statements.INSERT_REFUND)
_LINK_REFUND: Final = numbered(statements.LINK_REFUND)
_INSERT_REFUND_REQUEST: Final = numbered(statements.INSERT_REFUND_REQUEST)
_SELECT_REFUND_REQUEST: Final = numbered(statements.SELECT_REFUND_REQUEST)
_SELECT_REFUND_REQUEST_BY_KEY: Final = numbered(statements.SELECT_REFUND_REQUEST_BY_KEY)
_SELECT_PENDING_REFUND_REQUEST: Final = numbered(statements.SELECT_PENDING_REFUND_REQUEST)
_SELECT_REFUNDS: Final = numbered(statements.SELECT_REFUNDS)
_INSERT_CUSTOMER: Final = numbered(statements.INSERT_CUSTOMER)
_SELECT_CUSTOMER: Final = numbered(statements.SELECT_CUSTOMER)
_RECORD_EVENT: Final = numbered(statements.RECORD_EVENT)
_SELECT_EVENT: Final = numbered(statements.SELECT_EVENT)
_INSERT_AUDIT: Final = numbered(statements.INSERT_AUDIT)
_SELECT_AUDIT: Final = numbered(statements.SELECT_AUDIT)
_SELECT_AUDIT_OF_ORDER: Final = numbered(statements.SELECT_AUDIT_OF_ORDER)
_SELECT_MAINTENANCE: Final = statements.SELECT_MAINTENANCE
_LOCK_ORDER: Final = _SELECT_ORDER + " FOR NO KEY UPDATE"
_LOCK_REFUND_REQUEST: Final = _SELECT_REFUND_REQUEST + " FOR NO KEY UPDATE"
_RAISE_REFUNDED: Final = (
    "UPDATE orders SET amount_refunded = $1, version = version + 1, updated_at = $2"
    " WHERE order_id = $3 AND amount_refunded < $1"
)


class PostgresStore:
    """`Store` on a PostgreSQL database. Share one instance between tasks; open it with `PostgresStore.open`."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utc_now) -> None:
        """Wrap a pool already set up by `open` (schema migrated)."""
        self._pool: asyncpg.Pool | None = pool
        self._clock = clock
        self.applied_migrations: tuple[int, ...] = ()

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        clock: Clock = utc_now,
        min_size: int = 1,
        max_size: int = 5,
        migrate: bool = True,
        contract: bool = False,
    ) -> PostgresStore:
        """Connect a pool to `dsn` (`postgresql://user@host:port/database`; extra query parameters such as
        `search_path` become the connections' server settings) and apply the migrations, contract ones only with
        `contract=True` (or, with `migrate=False`, only check that this gateway can run on its schema as it is)."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                reset=_keep_session,
            )
        except Exception as error:
            raise _translate(error) from error
        try:
            async with pool.acquire() as conn:
                applied: list[int] = []
                if migrate:
                    applied = await apply_postgres_migrations(
                        conn, lambda: js_iso(clock()), contract=contract
                    )
                else:
                    await check_postgres_schema(conn)
        except BaseException as error:
            await pool.close()
            if isinstance(error, StoreError) or not isinstance(error, Exception):
                raise
            raise _translate(error) from error
        store = cls(pool, clock)
        store.applied_migrations = tuple(applied)
        return store

    async def close(self) -> None:
        """Close the pool once the transactions in flight are over; later calls get StoreUnavailable.
        Idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        await self._one_statement(lambda db: db.fetchval("SELECT 1"))

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
        order_row = row(order, statements.ORDER_COLUMNS)
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> tuple[Order, bool]:
            # A concurrent insert of the same id waits for ours (or we for it); the loser changes nothing (nor
            # audits anything) and then reads the winner's committed row.
            inserted = await db.fetchrow(_CREATE_ORDER, *order_row, *audit_values)
            if inserted is None:
                return await _fetch_existing_order(db, new.order_id), False
            return decode(inserted, statements.ORDER_COLUMNS, Order), True

        return await self._one_statement(work)

    async def get_order(self, order_id: str) -> Order | None:
        return await self._one_statement(lambda db: _fetch_order(db, order_id))

    async def find_order_by_payment_intent(self, payment_intent_id: str) -> Order | None:
        async def work(db: _Db) -> Order | None:
            owner = await db.fetchval("SELECT order_id FROM payment_intents WHERE id = $1", payment_intent_id)
            if owner is not None:
                return await _fetch_order(db, str(owner))
            # The current intent is normally in the history too; this covers an update that set only the pointer.
            found = await db.fetchrow(_SELECT_ORDER_BY_INTENT, payment_intent_id)
            return decode(found, statements.ORDER_COLUMNS, Order) if found is not None else None

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
        params.append(expected_version)
        sql = _with_audit(sql + f" AND version = ${len(params)}" + _RETURNING_ORDER, len(params))
        params.extend(audit_row(audit, now))

        async def work(db: _Db) -> Order:
            # The version check is the UPDATE's own condition: a concurrent update of the row makes this one wait,
            # then re-check against the new version and change nothing (nor audit anything).
            updated = await db.fetchrow(sql, *params)
            if updated is None:
                current = await _fetch_order(db, order_id)
                if current is None:
                    raise OrderNotFound(order_id)
                raise StaleOrder(f"order {order_id} is at version {current.version}, not {expected_version}")
            if intent is not None:  # the intents' table: the order's row stays as the UPDATE returned it
                await _upsert_intent(db, intent, now)  # raises, and so rolls the update back, if it cannot
            return decode(updated, statements.ORDER_COLUMNS, Order)

        if intent is None:  # one statement: atomic without a transaction
            return await self._one_statement(work)
        return await self._in_transaction(work, write=True)

    async def raise_amount_refunded(
        self, order_id: str, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        now = self._now()
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> tuple[Order, int]:
            # Locked, so that `before` is still the total when we raise it: the rise reported is ours alone.
            before = (await _lock_order(db, order_id)).amount_refunded
            if await _raise_refunded(db, order_id, amount_refunded, now):
                await _execute(db, _INSERT_AUDIT, audit_values)
            order = await _fetch_existing_order(db, order_id)
            return order, order.amount_refunded - before

        return await self._in_transaction(work, write=True)

    async def list_payment_intents(self, order_id: str) -> list[PaymentIntentRecord]:
        rows = await self._one_statement(lambda db: db.fetch(_SELECT_INTENTS, order_id))
        return [decode(found, statements.INTENT_COLUMNS, PaymentIntentRecord) for found in rows]

    # -- refunds -----------------------------------------------------------------------------------------------

    async def add_refund(self, refund: Refund, audit: AuditEntry) -> bool:
        now = self._now()
        values = row(
            msgspec.structs.replace(refund, created_at=refund.created_at or now), statements.REFUND_COLUMNS
        )
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> bool:
            added = await _execute(db, _INSERT_REFUND, values) == 1
            if added:
                await _execute(db, _INSERT_AUDIT, audit_values)
            return added

        return await self._in_transaction(work, write=True)

    async def list_refunds(self, order_id: str) -> list[Refund]:
        rows = await self._one_statement(lambda db: db.fetch(_SELECT_REFUNDS, order_id))
        return [decode(found, statements.REFUND_COLUMNS, Refund) for found in rows]

    # -- refund requests ---------------------------------------------------------------------------------------

    async def start_refund_request(
        self, request: RefundRequest, audit: AuditEntry
    ) -> tuple[RefundRequest, bool]:
        if request.status is not RefundRequestStatus.PENDING:
            raise ValueError(f"a refund request starts pending, not {request.status.value}")
        now = self._now()
        values = row(
            msgspec.structs.replace(request, created_at=now, updated_at=now),
            statements.REFUND_REQUEST_COLUMNS,
        )
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> tuple[RefundRequest, bool]:
            # The unique indexes decide (caller key, one pending request per order), across processes: a
            # concurrent start waits for ours to commit, then inserts nothing and reads the winner.
            if await _execute(db, _INSERT_REFUND_REQUEST, values) == 1:
                await _execute(db, _INSERT_AUDIT, audit_values)
                return await _fetch_refund_request(db, _SELECT_REFUND_REQUEST, request.id), True
            found = None
            if request.caller_key is not None:
                found = await db.fetchrow(_SELECT_REFUND_REQUEST_BY_KEY, request.caller_key)
            if found is None:
                found = await db.fetchrow(_SELECT_PENDING_REFUND_REQUEST, request.order_id)
            if found is None:
                # The id itself collided (ids are random: a bug of the caller), or the pending request we collided
                # with was settled in between: the caller's retry starts afresh.
                raise StoreError(f"refund request {request.id} could not start: it or its conflict changed")
            return decode(found, statements.REFUND_REQUEST_COLUMNS, RefundRequest), False

        return await self._in_transaction(work, write=True)

    async def get_refund_request(self, *, caller_key: str) -> RefundRequest | None:
        found = await self._one_statement(lambda db: db.fetchrow(_SELECT_REFUND_REQUEST_BY_KEY, caller_key))
        return decode(found, statements.REFUND_REQUEST_COLUMNS, RefundRequest) if found is not None else None

    async def get_pending_refund_request(self, order_id: str) -> RefundRequest | None:
        found = await self._one_statement(lambda db: db.fetchrow(_SELECT_PENDING_REFUND_REQUEST, order_id))
        return decode(found, statements.REFUND_REQUEST_COLUMNS, RefundRequest) if found is not None else None

    async def finish_refund_request(
        self, request_id: str, refund: Refund, result: bytes, amount_refunded: int, audit: AuditEntry
    ) -> tuple[Order, int]:
        now = self._now()
        refund_values = row(
            msgspec.structs.replace(
                refund, refund_request_id=request_id, created_at=refund.created_at or now
            ),
            statements.REFUND_COLUMNS,
        )
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> tuple[Order, int]:
            # The order is locked first, so that the rise reported is ours alone (a webhook raising the total at
            # the same moment waits for us, then finds nothing to raise).
            before = (await _lock_order(db, refund.order_id)).amount_refunded
            await _execute(db, _LINK_REFUND, refund_values)
            finished = await _execute(
                db,
                "UPDATE refund_requests SET status = 'succeeded', refund_id = $1, result = $2, error = NULL,"
                " updated_at = $3 WHERE id = $4 AND status = 'pending'",
                (refund.id, result, now, request_id),
            )
            raised = await _raise_refunded(db, refund.order_id, amount_refunded, now)
            if finished or raised:
                await _execute(db, _INSERT_AUDIT, audit_values)
            order = await _fetch_existing_order(db, refund.order_id)
            return order, order.amount_refunded - before

        return await self._in_transaction(work, write=True)

    async def close_refund_request(
        self, request_id: str, status: RefundRequestStatus, error: str, audit: AuditEntry
    ) -> RefundRequest:
        if status not in (RefundRequestStatus.REFUSED, RefundRequestStatus.ABANDONED):
            raise ValueError(f"a refund request closes refused or abandoned, not {status.value}")
        now = self._now()
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> RefundRequest:
            closed = await _execute(
                db,
                "UPDATE refund_requests SET status = $1, error = $2, updated_at = $3"
                " WHERE id = $4 AND status = 'pending'",
                (status.value, error, now, request_id),
            )
            if closed:
                await _execute(db, _INSERT_AUDIT, audit_values)
            return await _fetch_refund_request(db, _SELECT_REFUND_REQUEST, request_id)

        return await self._in_transaction(work, write=True)

    async def retry_refund_request(self, request_id: str, amount: int, audit: AuditEntry) -> RefundRequest:
        now = self._now()
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> RefundRequest:
            # Locked: two retries of one request take turns, and the second finds it pending, not abandoned.
            request = await _fetch_refund_request(db, _LOCK_REFUND_REQUEST, request_id)
            if request.status is not RefundRequestStatus.ABANDONED:
                raise StoreError(f"refund request {request_id} is {request.status.value}, not abandoned")
            if await db.fetchrow(_SELECT_PENDING_REFUND_REQUEST, request.order_id) is not None:
                raise RefundInProgress(f"order {request.order_id} has a refund request pending")
            try:
                await _execute(
                    db,
                    "UPDATE refund_requests SET status = 'pending', amount = $1, tries = tries + 1, error = NULL,"
                    " updated_at = $2 WHERE id = $3",
                    (amount, now, request_id),
                )
            except asyncpg.UniqueViolationError as error:
                # Another request of the order became pending after our check: the partial unique index refuses
                # the second one, as it would have refused the check's race in any process.
                raise RefundInProgress(f"order {request.order_id} has a refund request pending") from error
            await _execute(db, _INSERT_AUDIT, audit_values)
            return await _fetch_refund_request(db, _SELECT_REFUND_REQUEST, request_id)

        return await self._in_transaction(work, write=True)

    # -- customers ---------------------------------------------------------------------------------------------

    async def get_customer(self, email_hash: str) -> Customer | None:
        found = await self._one_statement(lambda db: db.fetchrow(_SELECT_CUSTOMER, email_hash))
        return decode(found, statements.CUSTOMER_COLUMNS, Customer) if found is not None else None

    async def add_customer(self, customer: Customer) -> Customer:
        values = row(
            msgspec.structs.replace(customer, created_at=customer.created_at or self._now()),
            statements.CUSTOMER_COLUMNS,
        )

        async def work(db: _Db) -> Customer:
            await _execute(db, _INSERT_CUSTOMER, values)
            return decode(
                await db.fetchrow(_SELECT_CUSTOMER, customer.email_hash),
                statements.CUSTOMER_COLUMNS,
                Customer,
            )

        return await self._in_transaction(work, write=True)

    # -- webhook events ----------------------------------------------------------------------------------------

    async def record_webhook_event(self, event: WebhookEvent) -> tuple[WebhookEvent, bool]:
        values = _received_event_row(event, self._now())
        stored = await self._in_transaction(lambda db: _record_event(db, values), write=True)
        return stored, stored.deliveries == 1

    async def get_webhook_event(self, event_id: str) -> WebhookEvent | None:
        found = await self._one_statement(lambda db: db.fetchrow(_SELECT_EVENT, event_id))
        return decode(found, statements.EVENT_COLUMNS, WebhookEvent) if found is not None else None

    async def list_webhook_events(
        self, *, limit: int = 50, order_id: str | None = None, status: WebhookEventStatus | None = None
    ) -> list[WebhookEvent]:
        if limit < 0:
            raise ValueError(f"limit must not be negative: {limit}")
        where: list[str] = []
        params: list[object] = []
        if order_id is not None:
            params.append(order_id)
            where.append(f"order_id = ${len(params)}")
        if status is not None:
            params.append(status.value)
            where.append(f"status = ${len(params)}")
        params.append(limit)
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        sql = statements.select(
            "webhook_events",
            statements.EVENT_COLUMNS,
            f"{condition}ORDER BY received_at DESC, id DESC LIMIT ${len(params)}",
        )
        rows = await self._one_statement(lambda db: db.fetch(sql, *params))
        return [decode(found, statements.EVENT_COLUMNS, WebhookEvent) for found in rows]

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
        values = _received_event_row(event, now)

        async def work(db: _Db) -> tuple[WebhookEvent, Order, OrderEffect | None]:
            stored = await _record_event(db, values)
            order, effect = await _apply_event(db, event.id, order_id, effect_of, again=False, now=now)
            return stored, order, effect

        return await self._in_transaction(work, write=True)

    async def ignore_webhook_event(self, event_id: str, note: str, *, again: bool = False) -> bool:
        only_received = "" if again else " AND status = 'received'"
        sql = f"UPDATE webhook_events SET status = 'ignored', note = $1 WHERE id = $2{only_received}"  # noqa: S608
        return await self._in_transaction(
            lambda db: _changed(db, sql, (note, event_id)),
            write=True,
        )

    async def note_webhook_event_failure(self, event_id: str, note: str) -> None:
        await self._in_transaction(
            lambda db: _execute(
                db,
                "UPDATE webhook_events SET note = $1 WHERE id = $2 AND status = 'received'",
                (note, event_id),
            ),
            write=True,
        )

    # -- maintenance -------------------------------------------------------------------------------------------

    async def get_maintenance(self) -> Maintenance:
        rows = await self._one_statement(lambda db: db.fetch(_SELECT_MAINTENANCE))
        return maintenance(rows)

    async def set_maintenance(self, enabled: bool, message: str, audit: AuditEntry) -> Maintenance:
        now = self._now()
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> Maintenance:
            await _execute(
                db,
                "INSERT INTO maintenance (id, enabled, message, changed_at, changed_by) VALUES (1, $1, $2, $3, $4)"
                " ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, message = excluded.message,"
                " changed_at = excluded.changed_at, changed_by = excluded.changed_by",
                (enabled, message, now, audit.actor),
            )
            await _execute(db, _INSERT_AUDIT, audit_values)
            return maintenance(await db.fetch(_SELECT_MAINTENANCE))

        return await self._in_transaction(work, write=True)

    # -- QR codes ----------------------------------------------------------------------------------------------

    async def redeem_qr(self, redemption: QrRedemption, audit: AuditEntry) -> tuple[QrRedemption, bool]:
        now = self._now()
        stored = msgspec.structs.replace(redemption, redeemed_at=redemption.redeemed_at or now)
        audit_values = audit_row(audit, now)

        async def work(db: _Db) -> tuple[QrRedemption, bool]:
            first = await _execute(db, _INSERT_QR_REDEMPTION, row(stored, statements.QR_COLUMNS)) == 1
            if first:
                await _execute(db, _INSERT_AUDIT, audit_values)
            found = await db.fetchrow(_SELECT_QR_REDEMPTION, stored.order_id)
            return decode(found, statements.QR_COLUMNS, QrRedemption), first

        return await self._in_transaction(work, write=True)

    # -- audit -------------------------------------------------------------------------------------------------

    async def list_audit(self, order_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit < 0:
            raise ValueError(f"limit must not be negative: {limit}")
        sql, params = (
            (_SELECT_AUDIT, [limit]) if order_id is None else (_SELECT_AUDIT_OF_ORDER, [order_id, limit])
        )
        rows = await self._one_statement(lambda db: db.fetch(sql, *params))
        return [audit_entry(found) for found in rows]

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _now(self) -> str:
        return js_iso(self._clock())

    async def _one_statement(self, work: Callable[[_Db], Awaitable[_T]]) -> _T:
        """Run `work`, ONE statement, on a pooled connection outside any explicit transaction: a single statement
        is atomic and sees one snapshot on its own, so BEGIN and COMMIT (two more round trips to the server, which
        are most of what the store costs the event loop) would add nothing. (`work` may follow a write that changed
        nothing with a read that needs no snapshot shared with it: the current row, for an error or the winner of
        a race.) Work of several statements uses `_in_transaction`."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        try:
            async with pool.acquire(timeout=COMMAND_TIMEOUT_S) as db:
                return await work(db)
        except StoreError:
            raise
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            raise _translate(error) from error

    async def _in_transaction(self, work: Callable[[_Db], Awaitable[_T]], *, write: bool) -> _T:
        """Run `work` as one whole transaction on a pooled connection: committed if it returns, rolled back if it
        raises (or is cancelled before its COMMIT: asyncpg then rolls back, or discards the connection). Database
        errors come out as StoreError / StoreUnavailable; the store's own errors (StaleOrder…) pass through, after
        the rollback."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        # Reads: one read-only snapshot for all their statements (never blocks, never blocked by writers).
        isolation: Literal["read_committed", "repeatable_read"] = (
            "read_committed" if write else "repeatable_read"
        )
        try:
            # A pool with every connection busy past the timeout is unavailable, like a lock held too long.
            async with (
                pool.acquire(timeout=COMMAND_TIMEOUT_S) as db,
                db.transaction(isolation=isolation, readonly=not write),
            ):
                return await work(db)
        except StoreError:
            raise
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            raise _translate(error) from error


async def _keep_session(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """How a connection is reset as it goes back to the pool: not at all. asyncpg's default sends one more query
    per transaction (`RESET ALL`, `UNLISTEN *`, `CLOSE ALL`, `pg_advisory_unlock_all()`) to undo session state
    this store never creates: no SET, no LISTEN, no cursors, and its only advisory lock (the migrations') is
    transaction-scoped. asyncpg still rolls back a transaction left open before it calls this."""


def _translate(error: Exception) -> StoreError:
    """The store's error for an asyncpg (or socket, or timeout) one."""
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = str(getattr(error, "sqlstate", "") or "")
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return StoreUnavailable(f"database unavailable: {error}")
        return StoreError(f"database error: {error}")
    if isinstance(error, asyncpg.DataError):
        # A value the driver cannot encode for its column: a bug to fix, not trouble to retry.
        return StoreError(f"database error: {error}")
    if isinstance(error, OSError | TimeoutError | asyncpg.InterfaceError):
        # Refused or dropped connections, timeouts, and a pool or connection closed under us.
        return StoreUnavailable(f"database unavailable: {error!r}")
    return StoreError(f"database error: {error!r}")


async def _execute(db: _Db, sql: str, params: Sequence[object]) -> int:
    """Run one statement; returns how many rows it changed (from the command tag: `INSERT 0 1`, `UPDATE 2`)."""
    status = await db.execute(sql, *params)
    return int(status.rsplit(" ", 1)[-1])


async def _changed(db: _Db, sql: str, params: Sequence[object]) -> bool:
    return await _execute(db, sql, params) == 1


async def _fetch_order(db: _Db, order_id: str) -> Order | None:
    found = await db.fetchrow(_SELECT_ORDER, order_id)
    return decode(found, statements.ORDER_COLUMNS, Order) if found is not None else None


async def _fetch_existing_order(db: _Db, order_id: str) -> Order:
    order = await _fetch_order(db, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def _lock_order(db: _Db, order_id: str) -> Order:
    """The order, locked until the transaction ends (concurrent writers of it wait); OrderNotFound if none."""
    found = await db.fetchrow(_LOCK_ORDER, order_id)
    if found is None:
        raise OrderNotFound(order_id)
    return decode(found, statements.ORDER_COLUMNS, Order)


async def _fetch_refund_request(db: _Db, sql: str, key: str) -> RefundRequest:
    found = await db.fetchrow(sql, key)
    if found is None:
        raise StoreError(f"no refund request {key}")
    return decode(found, statements.REFUND_REQUEST_COLUMNS, RefundRequest)


async def _upsert_intent(db: _Db, intent: PaymentIntentRecord, now: str) -> None:
    stored = msgspec.structs.replace(
        intent, created_at=intent.created_at or now, updated_at=intent.updated_at or now
    )
    if await _execute(db, _UPSERT_INTENT, row(stored, statements.INTENT_COLUMNS)) == 0:
        raise StoreError(f"payment intent {intent.id} is already recorded for another order")


async def _raise_refunded(db: _Db, order_id: str, amount_refunded: int, now: str) -> bool:
    """Raise the order's refunded total to `amount_refunded`, never lower it; True if it changed."""
    return await _execute(db, _RAISE_REFUNDED, (amount_refunded, now, order_id)) == 1


def _received_event_row(event: WebhookEvent, now: str) -> list[object]:
    received = msgspec.structs.replace(
        event,
        status=WebhookEventStatus.RECEIVED,
        received_at=now,
        applied_at=None,
        deliveries=1,
        order_id=None,
    )
    return row(received, statements.EVENT_COLUMNS)


async def _record_event(db: _Db, values: Sequence[object]) -> WebhookEvent:
    """Insert a delivery, or count one more of a known event; the event as stored."""
    stored = await db.fetchrow(_RECORD_EVENT, *values)
    return decode(stored, statements.EVENT_COLUMNS, WebhookEvent)


async def _apply_event(
    db: _Db,
    event_id: str,
    order_id: str,
    effect_of: Callable[[Order], OrderEffect],
    *,
    again: bool,
    now: str,
) -> tuple[Order, OrderEffect | None]:
    """`Store.apply_webhook_event`, inside a write transaction.

    The event row is locked first, then the order's (always in that order, so two appliers cannot deadlock):
    concurrent deliveries of one event take turns, and the later one finds it applied (exactly once); the effect
    is computed from the order as it is while nobody else can change it.
    """
    status = await db.fetchval("SELECT status FROM webhook_events WHERE id = $1 FOR NO KEY UPDATE", event_id)
    if status is None:
        raise StoreError(f"no webhook event {event_id}")
    order = await _lock_order(db, order_id)
    was_applied = status == WebhookEventStatus.APPLIED.value
    if status != WebhookEventStatus.RECEIVED.value and not again:
        return order, None  # another delivery applied it meanwhile: exactly once
    effect = effect_of(order)
    changed = False
    if effect.update is not None:
        sql, params = _update_order_sql(effect.update, now, order_id)
        changed = await _execute(db, sql, params) == 1
    if effect.intent is not None:
        if effect.intent.order_id != order_id:
            raise ValueError(f"payment intent {effect.intent.id} is for order {effect.intent.order_id}")
        await _upsert_intent(db, effect.intent, now)
    if effect.amount_refunded is not None:
        changed |= await _raise_refunded(db, order_id, effect.amount_refunded, now)
    if changed and effect.audit is not None:
        await _execute(db, _INSERT_AUDIT, audit_row(effect.audit, now))
    if changed or not was_applied:  # a replay that changed nothing keeps what the event did first
        await _execute(
            db,
            "UPDATE webhook_events SET status = 'applied', applied_at = $1, order_id = $2, note = $3 WHERE id = $4",
            (now, order_id, effect.note, event_id),
        )
    if changed:
        order = await _fetch_existing_order(db, order_id)
    return order, effect


def _update_order_sql(update: OrderUpdate, now: str, order_id: str) -> tuple[str, list[object]]:
    """`UPDATE orders` for the fields `update` sets (plus version and updated_at), by order id."""
    changes = order_changes(update)
    assignments = "".join(f"{column} = ${index}, " for index, column in enumerate(changes, start=1))
    count = len(changes)
    sql = (
        f"UPDATE orders SET {assignments}version = version + 1, updated_at = ${count + 1}"  # noqa: S608
        f" WHERE order_id = ${count + 2}"
    )
    return sql, [*changes.values(), now, order_id]
