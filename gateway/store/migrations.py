"""The store's schema, as numbered migrations applied in order at start-up.

Each migration runs in its own transaction together with the row that records it in `schema_migrations`, so a
crash leaves the schema either before or after a migration, never half-way. Two processes starting together are
fine: the version is read again inside the write transaction, and the second one finds the work done. A database
migrated by a newer gateway is refused unless every migration beyond this gateway's declares that it may still
run on it (additive migrations, `Migration.oldest_compatible`): that is what lets old and new replicas share a
database during a rolling upgrade.

The SQL is kept to what PostgreSQL also accepts, so both backends run the same statements. Where they must differ
(marked `PG:` below) a migration carries PostgreSQL's own statements, derived from SQLite's by a few exact, checked
substitutions (`_for_postgres`): the audit id (`INTEGER PRIMARY KEY` is SQLite's rowid alias; PostgreSQL uses
`BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`) and the byte columns (`BLOB` in SQLite, `BYTEA` in PostgreSQL).
SQLite's statements are the ones recorded by released databases, so they stay byte for byte as they were.

This module applies them to SQLite; `gateway.store.postgres_migrations` applies them to PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Final, Literal, NamedTuple

import aiosqlite

from gateway.store.base import StoreError

__all__ = [
    "COMPATIBILITY_VERSION",
    "LATEST_VERSION",
    "MIGRATIONS",
    "NEWER_MIGRATIONS_QUERY",
    "SCHEMA_MIGRATIONS_TABLE",
    "Dialect",
    "Migration",
    "apply_migrations",
    "check_schema",
    "check_versions",
    "contract_migration_error",
    "is_contract",
    "newer_schema_error",
    "older_schema_error",
    "record_statement",
    "refuse_contract_migration",
    "refuse_unless_compatible",
    "schema_version",
]

Dialect = Literal["sqlite", "postgres"]


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]
    """Run one by one (not as a script: a script would commit on its own, outside our transaction). SQLite's, and
    PostgreSQL's too unless `postgres` is given."""
    postgres: tuple[str, ...] | None = None
    """PostgreSQL's statements where its dialect differs (None: the same as `statements`)."""
    oldest_compatible: int | None = None
    """The oldest schema version whose gateway still runs correctly on a database with this migration applied, so
    that old and new replicas can share the database during a rolling upgrade: for an additive migration (a new
    nullable column, table or index that older code neither reads nor needs to write), the version before it.
    None: only gateways that know this migration. Recorded in `schema_migrations` from version 5 on; gateways
    before version 5 read no such thing and refuse any newer database."""

    def statements_for(self, dialect: Dialect) -> tuple[str, ...]:
        """The statements this migration runs on `dialect`."""
        if dialect == "postgres" and self.postgres is not None:
            return self.postgres
        return self.statements


def _for_postgres(statements: tuple[str, ...], substitutions: dict[str, str]) -> tuple[str, ...]:
    """PostgreSQL's version of SQLite statements: each substitution (exact text) must apply, so a typo here fails
    at import, not as a silently different schema."""
    result = list(statements)
    for old, new in substitutions.items():
        hits = [index for index, statement in enumerate(result) if old in statement]
        if len(hits) != 1 or result[hits[0]].count(old) != 1:
            raise AssertionError(
                f"the substitution {old!r} must match exactly once, not in {len(hits)} statements"
            )
        result[hits[0]] = result[hits[0]].replace(old, new)
    return tuple(result)


_INITIAL_SCHEMA: Final = (
    # Money columns are BIGINT minor units. `amount_refunded <= amount_received` is deliberately NOT checked:
    # Stripe's webhooks arrive in any order, so `charge.refunded` may be applied before the event that raises
    # `amount_received`; refusing it would lose a true refund total. Both are still kept non-negative.
    """
    CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
        status TEXT NOT NULL,
        payment_intent_id TEXT,
        customer_id TEXT,
        amount_received BIGINT NOT NULL CHECK (amount_received >= 0),
        amount_refunded BIGINT NOT NULL CHECK (amount_refunded >= 0),
        attempt INTEGER NOT NULL CHECK (attempt >= 1),
        nonce TEXT NOT NULL,
        owner TEXT,
        last_error TEXT,
        version INTEGER NOT NULL CHECK (version >= 1),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # One PaymentIntent belongs to one order: a second order pointing at it would let a webhook pay the wrong one.
    "CREATE UNIQUE INDEX orders_payment_intent_id_key ON orders (payment_intent_id)",
    """
    CREATE TABLE payment_intents (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        attempt INTEGER NOT NULL CHECK (attempt >= 1),
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX payment_intents_order_id_idx ON payment_intents (order_id, created_at)",
    """
    CREATE TABLE refunds (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        payment_intent_id TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        status TEXT NOT NULL,
        reason TEXT,
        requested_by TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX refunds_order_id_idx ON refunds (order_id, created_at)",
    """
    CREATE TABLE customers (
        email_hash TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    # PG: payload BYTEA.
    """
    CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        created BIGINT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL,
        received_at TEXT NOT NULL,
        applied_at TEXT,
        deliveries INTEGER NOT NULL CHECK (deliveries >= 1),
        note TEXT
    )
    """,
    # Finding the events still to apply (status `received`), oldest first.
    "CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at)",
    # PG: response BYTEA.
    """
    CREATE TABLE idempotency_records (
        key TEXT PRIMARY KEY,
        operation TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response BLOB,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )
    """,
    # PG: id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY. No foreign key on order_id: the trail is
    # append-only and may name an order that was never written (a refused creation, say).
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        request_id TEXT,
        order_id TEXT,
        action TEXT NOT NULL,
        details TEXT NOT NULL
    )
    """,
    "CREATE INDEX audit_log_order_id_idx ON audit_log (order_id, id)",
)

_REFUND_REQUESTS: Final = (
    # One row per refund asked of the gateway, written BEFORE Stripe is called: when Stripe's answer is lost (a
    # timeout, a crash), the row is still `pending` and the next refund call of that order settles it by looking
    # for a Stripe refund whose metadata names it, so nothing is ever refunded twice. Its id is the Stripe
    # idempotency key's tail. `caller_key` is the caller's own idempotency key, kept for good (not 24 hours).
    # PG: result BYTEA.
    """
    CREATE TABLE refund_requests (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        caller_key TEXT UNIQUE,
        fingerprint TEXT NOT NULL,
        requested_amount BIGINT CHECK (requested_amount > 0),
        amount BIGINT NOT NULL CHECK (amount > 0),
        reason TEXT,
        requested_by TEXT NOT NULL,
        request_id TEXT,
        status TEXT NOT NULL,
        tries INTEGER NOT NULL CHECK (tries >= 1),
        refund_id TEXT,
        result BLOB,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # At most one refund in flight per order, across every process sharing the database: the amount left to
    # refund is only known once the previous refund is settled.
    "CREATE UNIQUE INDEX refund_requests_one_pending ON refund_requests (order_id) WHERE status = 'pending'",
    # Refunds that reach us from Stripe (webhooks: a refund made in the Dashboard) have no request of ours, so
    # the Stripe idempotency key column gives way to a nullable link to the request. Rebuilt, not altered:
    # SQLite cannot drop a NOT NULL; create-copy-drop-rename is portable.
    """
    CREATE TABLE refunds_new (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        payment_intent_id TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        status TEXT NOT NULL,
        reason TEXT,
        requested_by TEXT NOT NULL,
        refund_request_id TEXT REFERENCES refund_requests (id),
        created_at TEXT NOT NULL
    )
    """,
    """
    INSERT INTO refunds_new (id, order_id, payment_intent_id, amount, currency, status, reason, requested_by,
        refund_request_id, created_at)
    SELECT id, order_id, payment_intent_id, amount, currency, status, reason, requested_by, NULL, created_at
    FROM refunds
    """,
    "DROP TABLE refunds",
    "ALTER TABLE refunds_new RENAME TO refunds",
    "CREATE INDEX refunds_order_id_idx ON refunds (order_id, created_at)",
    # Replaced by refund_requests (kept for good, not 24 hours; settled against Stripe when in doubt).
    "DROP TABLE idempotency_records",
    # Which order an event was applied to, so an operator can list an order's events.
    "ALTER TABLE webhook_events ADD COLUMN order_id TEXT",
    "CREATE INDEX webhook_events_order_id_idx ON webhook_events (order_id, received_at)",
    "CREATE INDEX webhook_events_received_at_idx ON webhook_events (received_at)",
)

_MAINTENANCE: Final = (
    # The maintenance switch, in the store so that every replica sharing it sees the same switch: one row at most
    # (id = 1); no row is the same as off.
    """
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        enabled BOOLEAN NOT NULL,
        message TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        changed_by TEXT NOT NULL
    )
    """,
)

_SECURITY: Final = (
    # A guest (no bearer token) proves an order is theirs with its client secret: only a SHA-256 of it is kept, so
    # the store alone never hands anyone a way to pay for, or look at, somebody else's order.
    "ALTER TABLE payment_intents ADD COLUMN client_secret_sha256 TEXT",
    # A payment QR code scanned by staff when single use is on: one row per order, the first scan wins.
    """
    CREATE TABLE qr_redemptions (
        order_id TEXT PRIMARY KEY REFERENCES orders (order_id),
        key_id TEXT NOT NULL,
        redeemed_at TEXT NOT NULL,
        redeemed_by TEXT NOT NULL,
        request_id TEXT
    )
    """,
)

_COMPATIBILITY: Final = (
    # Which older gateways each migration from here on leaves able to run (see `Migration.oldest_compatible`).
    "ALTER TABLE schema_migrations ADD COLUMN oldest_compatible INTEGER",
)

COMPATIBILITY_VERSION: Final = 5
"""The migration that gives `schema_migrations` its `oldest_compatible` column: rows from it on have one."""

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "initial schema",
        _INITIAL_SCHEMA,
        _for_postgres(
            _INITIAL_SCHEMA,
            {
                "payload BLOB": "payload BYTEA",
                "response BLOB": "response BYTEA",
                "id INTEGER PRIMARY KEY,": "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,",
            },
        ),
    ),
    Migration(
        2,
        "refund requests, webhook event orders",
        _REFUND_REQUESTS,
        _for_postgres(_REFUND_REQUESTS, {"result BLOB": "result BYTEA"}),
    ),
    Migration(3, "maintenance switch", _MAINTENANCE),
    Migration(4, "guest client secrets, QR code redemptions", _SECURITY),
    Migration(COMPATIBILITY_VERSION, "schema compatibility", _COMPATIBILITY, oldest_compatible=4),
)
"""Append only: a released migration is never edited, a change is a new one."""

LATEST_VERSION: Final = MIGRATIONS[-1].version

SCHEMA_MIGRATIONS_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL
    )
"""


def check_versions(migrations: Sequence[Migration]) -> int:
    """The last version of `migrations`; ValueError unless they are unique, increasing and start at 1 or more."""
    versions = [migration.version for migration in migrations]
    if not versions or versions != sorted(set(versions)) or versions[0] < 1:
        raise ValueError(f"migration versions must be unique, increasing and start at 1 or more: {versions}")
    for migration in migrations:
        oldest = migration.oldest_compatible
        if oldest is not None and (migration.version < COMPATIBILITY_VERSION or oldest >= migration.version):
            raise ValueError(
                f"migration {migration.version}: oldest_compatible must be below its version, and only migrations"
                f" from {COMPATIBILITY_VERSION} on can record one"
            )
    return versions[-1]


def newer_schema_error(current: int, latest: int) -> StoreError:
    """Why a gateway refuses a database migrated by a newer one: it would write through a schema it does not
    understand."""
    return StoreError(
        f"the database schema is at version {current}, newer than this gateway knows ({latest}), and not every"
        " migration since declares that this gateway may still run on it: run a gateway at least as recent as the"
        " one that migrated it"
    )


def is_contract(migration: Migration) -> bool:
    """A migration that older gateways cannot run on (no `oldest_compatible`), from the versions that record one:
    the gateways' automatic migration at start-up never applies it to a database in use, since replicas of the
    older version may still be running on it."""
    return migration.version > COMPATIBILITY_VERSION and migration.oldest_compatible is None


def contract_migration_error(migration: Migration) -> StoreError:
    return StoreError(
        f"migration {migration.version} ({migration.name}) changes the schema in a way older gateways cannot run"
        " on, so it is never applied at start-up: stop every replica of the older version, then run"
        " `gateway db migrate` (README: Rolling out a new version)"
    )


def refuse_contract_migration(migration: Migration, current: int, found: int, contract: bool) -> None:
    """Raise `contract_migration_error` if `migration`, not yet applied at `current`, is a contract one, the
    database was in use (at version `found` > 0 when this process first looked) and the caller did not ask for
    contract migrations (`gateway db migrate` does)."""
    if migration.version > current and is_contract(migration) and found > 0 and not contract:
        raise contract_migration_error(migration)


def older_schema_error(current: int, latest: int) -> StoreError:
    """Why an operator's command refuses a database this gateway has not migrated yet (commands never migrate)."""
    return StoreError(
        f"the database schema is at version {current}, older than this gateway's ({latest}): start `gateway serve`"
        " of this version, or run `gateway db migrate`, to migrate it first"
    )


NEWER_MIGRATIONS_QUERY: Final = "SELECT version, oldest_compatible FROM schema_migrations WHERE version > ?"
"""Each migration a newer gateway applied beyond `?` (this gateway's last), with the oldest gateway it tolerates."""


def refuse_unless_compatible(current: int, latest: int, newer: Sequence[tuple[int, int | None]]) -> None:
    """Raise `newer_schema_error` unless every migration in `newer` (version, oldest_compatible), the ones beyond
    `latest` that a newer gateway applied, declares that a gateway at `latest` still runs on it."""
    if any(oldest is None or oldest > latest for _, oldest in newer):
        raise newer_schema_error(current, latest)


def record_statement(migration: Migration, applied_at: str) -> tuple[str, tuple[object, ...]]:
    """The statement (`?` placeholders) and values that record `migration` as applied in `schema_migrations`."""
    if migration.version < COMPATIBILITY_VERSION:
        return (
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, applied_at),
        )
    return (
        "INSERT INTO schema_migrations (version, name, applied_at, oldest_compatible) VALUES (?, ?, ?, ?)",
        (migration.version, migration.name, applied_at, migration.oldest_compatible),
    )


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The highest migration recorded (0 for a fresh database)."""
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
    return int(rows[0][0])


async def apply_migrations(
    conn: aiosqlite.Connection,
    now: Callable[[], str],
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    contract: bool = False,
) -> list[int]:
    """Bring the schema up to the last of `migrations`; returns the versions this call applied. A contract
    migration (`is_contract`) is applied to a database in use only with `contract=True`; otherwise StoreError.

    `conn` must be in autocommit mode (`isolation_level=None`): the transactions here are explicit. Raises
    StoreError if the database is at a version newer than the last known one, so an old binary never writes
    through a schema it does not understand. sqlite3 errors are left to the caller to translate.
    """
    latest = check_versions(migrations)
    applied: list[int] = []
    # The version this process first found (0: a new database, which nobody uses yet).
    found: int | None = None
    await _in_transaction(conn, [SCHEMA_MIGRATIONS_TABLE])
    for migration in migrations:
        try:
            await conn.execute("BEGIN IMMEDIATE")
            # Read inside the write transaction: another process may have applied it since we last looked.
            current = await schema_version(conn)
            found = current if found is None else found
            if current > latest:
                await _refuse_unless_compatible(conn, current, latest)
            refuse_contract_migration(migration, current, found, contract)
            if migration.version <= current:
                await conn.execute("ROLLBACK")
                continue
            for statement in migration.statements_for("sqlite"):
                await conn.execute(statement)
            await conn.execute(*record_statement(migration, now()))
            await conn.execute("COMMIT")
        except BaseException:
            await _rollback(conn)
            raise
        applied.append(migration.version)
    return applied


async def check_schema(conn: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Without changing anything: StoreError unless this gateway can run on the schema as it is (at its own
    version, or newer with every newer migration compatible). For the operators' commands, which never migrate."""
    latest = check_versions(migrations)
    tables = await conn.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    current = await schema_version(conn) if list(tables) else 0
    if current < latest:
        raise older_schema_error(current, latest)
    if current > latest:
        await _refuse_unless_compatible(conn, current, latest)


async def _refuse_unless_compatible(conn: aiosqlite.Connection, current: int, latest: int) -> None:
    if latest < COMPATIBILITY_VERSION:  # such a gateway never looked: it refused any newer database
        raise newer_schema_error(current, latest)
    rows = await conn.execute_fetchall(NEWER_MIGRATIONS_QUERY, (latest,))
    refuse_unless_compatible(current, latest, [(int(version), oldest) for version, oldest in rows])


async def _in_transaction(conn: aiosqlite.Connection, statements: Sequence[str]) -> None:
    try:
        await conn.execute("BEGIN IMMEDIATE")
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("COMMIT")
    except BaseException:
        await _rollback(conn)
        raise


async def _rollback(conn: aiosqlite.Connection) -> None:
    # Nothing left to undo when SQLite already rolled back: the error worth raising is the one that got us here.
    with contextlib.suppress(sqlite3.Error):
        await conn.execute("ROLLBACK")
