"""The store's migrations (`gateway.store.migrations`) applied to PostgreSQL.

As on SQLite, each migration runs in its own transaction together with the row that records it, and a database
migrated by a newer gateway is refused unless every migration it applied says this gateway may still run on it
(`Migration.oldest_compatible`). PostgreSQL's DDL is transactional, so a failed migration leaves nothing
behind. Several processes starting together on a fresh database take turns: every transaction here first takes
one transaction-scoped advisory lock (`pg_advisory_xact_lock`), then reads the version again, so the later ones
find the work done (a concurrent `CREATE TABLE IF NOT EXISTS` alone is not safe in PostgreSQL: two of them may
both try to create the table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

import asyncpg
import asyncpg.pool

from gateway.store.migrations import (
    COMPATIBILITY_VERSION,
    MIGRATIONS,
    NEWER_MIGRATIONS_QUERY,
    SCHEMA_MIGRATIONS_TABLE,
    Migration,
    check_versions,
    newer_schema_error,
    older_schema_error,
    record_statement,
    refuse_contract_migration,
    refuse_unless_compatible,
)
from gateway.store.statements import numbered

__all__ = [
    "MIGRATION_LOCK_KEY",
    "PgConnection",
    "apply_postgres_migrations",
    "check_postgres_schema",
    "postgres_schema_version",
]

PgConnection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)
"""A connection of its own, or one lent by a pool."""

MIGRATION_LOCK_KEY: Final = (
    0x7472_7063_5354_4F52  # "trpcSTOR": one fixed key, the same in every gateway process
)
"""The advisory lock that serialises migrations on one database (a bigint; any fixed value will do)."""


async def postgres_schema_version(conn: PgConnection) -> int:
    """The highest migration recorded (0 for a fresh database with the table)."""
    version = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return int(version)


async def apply_postgres_migrations(
    conn: PgConnection,
    now: Callable[[], str],
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    contract: bool = False,
) -> list[int]:
    """Bring the schema up to the last of `migrations`; returns the versions this call applied. A contract
    migration (`is_contract`) is applied to a database in use only with `contract=True`; otherwise StoreError.

    Raises StoreError if the database is at a version newer than the last known one. asyncpg errors are left to
    the caller to translate.
    """
    latest = check_versions(migrations)
    applied: list[int] = []
    # The version this process first found (0: a new database, which nobody uses yet).
    found: int | None = None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(SCHEMA_MIGRATIONS_TABLE)
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            # Read under the lock: another process may have applied it since we last looked.
            current = await postgres_schema_version(conn)
            found = current if found is None else found
            if current > latest:
                await _refuse_unless_compatible(conn, current, latest)
            refuse_contract_migration(migration, current, found, contract)
            if migration.version <= current:
                continue
            for statement in migration.statements_for("postgres"):
                await conn.execute(statement)
            record, values = record_statement(migration, now())
            await conn.execute(numbered(record), *values)
        applied.append(migration.version)
    return applied


async def check_postgres_schema(conn: PgConnection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Without changing anything: StoreError unless this gateway can run on the schema as it is (at its own
    version, or newer with every newer migration compatible). For the operators' commands, which never migrate."""
    latest = check_versions(migrations)
    has_table = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    current = await postgres_schema_version(conn) if has_table else 0
    if current < latest:
        raise older_schema_error(current, latest)
    if current > latest:
        await _refuse_unless_compatible(conn, current, latest)


async def _refuse_unless_compatible(conn: PgConnection, current: int, latest: int) -> None:
    if latest < COMPATIBILITY_VERSION:  # such a gateway never looked: it refused any newer database
        raise newer_schema_error(current, latest)
    rows = await conn.fetch(numbered(NEWER_MIGRATIONS_QUERY), latest)
    refuse_unless_compatible(current, latest, [(int(row[0]), row[1]) for row in rows])
