"""SQLite only: pragmas, migrations on a file, `sqlite:///` URLs."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import aiosqlite
import pytest

from gateway.store import Refund, StoreError, open_store, sqlite_path
from gateway.store.migrations import LATEST_VERSION, MIGRATIONS, Migration, apply_migrations, check_versions
from gateway.store.sqlite import SqliteStore
from tests.store.test_store import ADDITIVE_FUTURE, BREAKING_FUTURE, CONTRACT_FUTURE, ISO, audit, new_order


async def test_sqlite_pragmas(database: Path) -> None:
    store = await SqliteStore.open(database)
    try:
        connection = store._connection
        assert connection is not None
        pragmas = {}
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous"):
            [(value,)] = list(await connection.execute_fetchall(f"PRAGMA {name}"))
            pragmas[name] = value
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000, "synchronous": 1}
    finally:
        await store.close()


async def _migration_rows(database: Path) -> list[tuple[int, str, str]]:
    async with aiosqlite.connect(database) as connection:
        rows = await connection.execute_fetchall("SELECT version, name, applied_at FROM schema_migrations")
        return [(int(version), str(name), str(at)) for version, name, at in rows]


async def test_sqlite_migrations_apply_once_and_refuse_a_newer_schema(database: Path) -> None:
    assert LATEST_VERSION == MIGRATIONS[-1].version == 5
    await (await SqliteStore.open(database)).close()
    rows = await _migration_rows(database)
    assert [(version, name) for version, name, _ in rows] == [
        (1, "initial schema"),
        (2, "refund requests, webhook event orders"),
        (3, "maintenance switch"),
        (4, "guest client secrets, QR code redemptions"),
        (5, "schema compatibility"),
    ]
    assert all(ISO.match(applied_at) for _, _, applied_at in rows)

    await (await SqliteStore.open(database)).close()  # reopening is a no-op
    assert await _migration_rows(database) == rows
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        assert await apply_migrations(connection, lambda: "x") == []
        await connection.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (6, 'from the future', 'x')"
        )

    with pytest.raises(StoreError, match="version 6"):
        await SqliteStore.open(database)


async def test_sqlite_store_runs_on_a_database_a_newer_gateway_migrated_additively(database: Path) -> None:
    """A rolling upgrade: the new gateway migrated the database; an old replica (re)starting must still run on it,
    as long as the new migrations say it may, and be refused once one does not."""
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        assert await apply_migrations(connection, lambda: "x", (*MIGRATIONS, ADDITIVE_FUTURE)) == [
            1,
            2,
            3,
            4,
            5,
            6,
        ]
    store = await SqliteStore.open(database)
    try:
        order, created = await store.create_order(new_order(), audit("order.created"))
        assert created
        assert await store.get_order(order.order_id) == order
    finally:
        await store.close()

    async with aiosqlite.connect(database, isolation_level=None) as connection:
        future = (*MIGRATIONS, ADDITIVE_FUTURE, BREAKING_FUTURE)
        assert await apply_migrations(connection, lambda: "x", future) == [7]
    with pytest.raises(StoreError, match="version 7, newer than this gateway knows \\(5\\)"):
        await SqliteStore.open(database)


async def test_sqlite_two_processes_migrate_a_fresh_file_together(database: Path) -> None:
    stores = await asyncio.gather(SqliteStore.open(database), SqliteStore.open(database))
    for store in stores:
        await store.close()
    assert [row[:2] for row in await _migration_rows(database)] == [
        (migration.version, migration.name) for migration in MIGRATIONS
    ]


async def test_sqlite_migration_2_keeps_the_refunds_recorded_before_it(database: Path) -> None:
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        assert await apply_migrations(connection, lambda: "2024-01-15T10:30:00.000Z", MIGRATIONS[:1]) == [1]
        await connection.execute(
            "INSERT INTO orders VALUES ('ord_1', 1500, 'eur', 'succeeded', 'pi_1', NULL, 1500, 500, 1, 'n', NULL,"
            " NULL, 3, 'x', 'x')"
        )
        await connection.execute(
            "INSERT INTO refunds VALUES ('re_1', 'ord_1', 'pi_1', 500, 'eur', 'succeeded', NULL, 'operator:a',"
            " 'key_1', '2024-01-15T10:30:00.000Z')"
        )
    store = await SqliteStore.open(database)
    try:
        assert await store.list_refunds("ord_1") == [
            Refund(
                id="re_1",
                order_id="ord_1",
                payment_intent_id="pi_1",
                amount=500,
                currency="eur",
                status="succeeded",
                reason=None,
                requested_by="operator:a",
                refund_request_id=None,
                created_at="2024-01-15T10:30:00.000Z",
            )
        ]
    finally:
        await store.close()


async def test_open_store_relative_url_creates_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///data/nested/gateway.sqlite3")
    try:
        order, created = await store.create_order(new_order(), audit("order.created"))
        assert created
        assert ISO.match(order.created_at)  # the real clock writes the same format
        [entry] = await store.list_audit()
        assert ISO.match(entry.at)
    finally:
        await store.close()
    assert (tmp_path / "data" / "nested" / "gateway.sqlite3").is_file()


async def test_open_store_absolute_url(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "gateway.sqlite3"
    url = f"sqlite:///{path}"
    assert url.startswith("sqlite:////")
    assert sqlite_path(url) == path
    store = await open_store(url)
    await store.ping()
    await store.close()
    assert path.is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user@localhost/gateway", "'mysql'"),
        ("sqlite://:memory:", "sqlite:///"),
        ("sqlite:///", "sqlite:///"),
        ("gateway.sqlite3", "not a database URL"),
    ],
)
async def test_open_store_refuses_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        await open_store(url)


def test_sqlite_path_refuses_a_postgresql_url() -> None:
    with pytest.raises(ValueError, match="names no SQLite file"):
        sqlite_path("postgresql://user@localhost/gateway")


# What released SQLite databases ran (and recorded as applied): never edited, however PostgreSQL's differ.
_RELEASED_SQLITE_STATEMENTS = {
    1: "14534ef48d472178c4bfab24adb42dfa6938904f5595caabe22725320900549d",
    2: "f12dec789abef919ae1092387706b34e066c42ed79675ed2e50eceb4c0aae070",
    3: "13ef7e241d6581e8faae37dd5b30fc307147414d197131dac9a028856c52fc22",
    4: "17a9e7ba6ac15ecb09abdec87d402af0963dd977f3fa2ae7ca97031c5b11a436",
}


def test_released_sqlite_migrations_are_never_edited() -> None:
    for migration in MIGRATIONS:
        if migration.version in _RELEASED_SQLITE_STATEMENTS:
            digest = hashlib.sha256("\x00".join(migration.statements_for("sqlite")).encode()).hexdigest()
            assert digest == _RELEASED_SQLITE_STATEMENTS[migration.version], migration.version


def test_a_migration_cannot_claim_compatibility_with_itself_or_before_the_column_existed() -> None:
    with pytest.raises(ValueError, match="oldest_compatible must be below its version"):
        check_versions((*MIGRATIONS, Migration(6, "x", ("SELECT 1",), oldest_compatible=6)))
    with pytest.raises(ValueError, match="oldest_compatible must be below its version"):
        check_versions((Migration(1, "x", ("SELECT 1",), oldest_compatible=0),))
    assert check_versions((*MIGRATIONS, ADDITIVE_FUTURE, BREAKING_FUTURE)) == 7


async def test_sqlite_contract_migration_waits_for_an_explicit_migrate_on_a_database_in_use(
    database: Path,
) -> None:
    future = (*MIGRATIONS, CONTRACT_FUTURE)
    await (await SqliteStore.open(database)).close()  # in use: at this version
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        with pytest.raises(StoreError, match=r"migration 6 .* stop every replica of the older version"):
            await apply_migrations(connection, lambda: "x", future)
        assert max(version for version, _, _ in await _migration_rows(database)) == LATEST_VERSION
        assert await apply_migrations(connection, lambda: "x", future, contract=True) == [6]


async def test_sqlite_contract_migration_applies_at_once_to_a_new_database(database: Path) -> None:
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        future = (*MIGRATIONS, CONTRACT_FUTURE)
        assert await apply_migrations(connection, lambda: "x", future) == [m.version for m in future]
