"""PostgreSQL only: migrations on a shared database, `postgresql://` URLs, an unreachable server, and races
between several processes (pools) that SQLite's single writer never exercises."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import msgspec
import pytest

from gateway.store import (
    OrderEffect,
    OrderUpdate,
    PaymentStatus,
    StaleOrder,
    StoreError,
    StoreUnavailable,
    open_store,
    statements,
)
from gateway.store.migrations import LATEST_VERSION, MIGRATIONS, Migration
from gateway.store.postgres import PostgresStore
from gateway.store.postgres_migrations import apply_postgres_migrations
from gateway.store.rows import row
from gateway.store.statements import numbered
from tests.store.conftest import FakeClock
from tests.store.test_store import (
    ADDITIVE_FUTURE,
    BREAKING_FUTURE,
    CONTRACT_FUTURE,
    ISO,
    audit,
    new_order,
    webhook_event,
)
from tests.support.postgres import postgres_schema


async def _migration_rows(url: str) -> list[tuple[int, str, str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
        return [(int(version), str(name), str(at)) for version, name, at in rows]
    finally:
        await connection.close()


async def test_postgres_migrations_apply_once_and_refuse_a_newer_schema() -> None:
    async with postgres_schema() as url:
        await (await PostgresStore.open(url)).close()
        rows = await _migration_rows(url)
        assert [row[:2] for row in rows] == [(m.version, m.name) for m in MIGRATIONS]
        assert all(ISO.match(applied_at) for _, _, applied_at in rows)

        await (await PostgresStore.open(url)).close()  # reopening is a no-op
        assert await _migration_rows(url) == rows
        connection = await asyncpg.connect(url)
        try:
            assert await apply_postgres_migrations(connection, lambda: "x") == []
            await connection.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (6, 'from the future', 'x')"
            )
        finally:
            await connection.close()
        with pytest.raises(StoreError, match="version 6"):
            await PostgresStore.open(url)


async def test_postgres_store_runs_on_a_database_a_newer_gateway_migrated_additively() -> None:
    """A rolling upgrade: the new gateway migrated the database; an old replica (re)starting must still run on it,
    as long as the new migrations say it may, and be refused once one does not."""
    async with postgres_schema() as url:
        connection = await asyncpg.connect(url)
        try:
            future = (*MIGRATIONS, ADDITIVE_FUTURE)
            assert await apply_postgres_migrations(connection, lambda: "x", future) == [1, 2, 3, 4, 5, 6]
        finally:
            await connection.close()
        store = await PostgresStore.open(url)
        try:
            order, created = await store.create_order(new_order(), audit("order.created"))
            assert created
            assert await store.get_order(order.order_id) == order
        finally:
            await store.close()

        connection = await asyncpg.connect(url)
        try:
            future = (*MIGRATIONS, ADDITIVE_FUTURE, BREAKING_FUTURE)
            assert await apply_postgres_migrations(connection, lambda: "x", future) == [7]
        finally:
            await connection.close()
        with pytest.raises(StoreError, match="version 7, newer than this gateway knows \\(5\\)"):
            await PostgresStore.open(url)


async def test_postgres_processes_migrating_a_fresh_database_together() -> None:
    async with postgres_schema() as url:
        stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(4)))
        for store in stores:
            await store.close()
        assert [row[:2] for row in await _migration_rows(url)] == [(m.version, m.name) for m in MIGRATIONS]


async def test_a_failing_postgres_migration_leaves_nothing_behind() -> None:
    broken = (
        *MIGRATIONS,
        Migration(99, "broken", ("CREATE TABLE half_done (id INTEGER)", "SELECT nonsense")),
    )
    async with postgres_schema() as url:
        connection = await asyncpg.connect(url)
        try:
            with pytest.raises(asyncpg.PostgresError):
                await apply_postgres_migrations(connection, lambda: "x", broken)
            assert await connection.fetchval("SELECT to_regclass('half_done')") is None
            assert (
                await connection.fetchval("SELECT MAX(version) FROM schema_migrations")
                == MIGRATIONS[-1].version
            )
        finally:
            await connection.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_open_store_opens_postgresql_urls(scheme: str) -> None:
    async with postgres_schema() as url:
        store = await open_store(re.sub(r"^postgresql", scheme, url))
        try:
            assert isinstance(store, PostgresStore)
            order, created = await store.create_order(new_order(), audit("order.created"))
            assert created
            assert ISO.match(order.created_at)  # the real clock writes the same format as SQLite's
        finally:
            await store.close()


async def test_an_unreachable_server_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/test")


async def test_processes_applying_one_event_apply_it_exactly_once() -> None:
    """Deliveries of one event to several processes at once: one applies it, the others find it applied."""
    async with postgres_schema() as url:
        clock = FakeClock()
        stores = [await PostgresStore.open(url, clock=clock) for _ in range(4)]
        try:
            await stores[0].create_order(new_order(), audit("order.created"))
            calls = 0

            def effect(order: object) -> OrderEffect:
                nonlocal calls
                calls += 1
                return OrderEffect(
                    note="paid",
                    update=OrderUpdate(status=PaymentStatus.SUCCEEDED, amount_received=1500),
                    audit=audit("webhook.payment_intent.succeeded"),
                )

            results = await asyncio.gather(
                *(stores[i % 4].receive_webhook_event(webhook_event(), "ord_1", effect) for i in range(12))
            )
            assert calls == 1
            assert sum(applied is not None for _, _, applied in results) == 1
            event = await stores[1].get_webhook_event("evt_1")
            assert event is not None
            assert event.deliveries == 12
            order = await stores[2].get_order("ord_1")
            assert order is not None
            assert (order.status, order.version) == (PaymentStatus.SUCCEEDED, 2)
        finally:
            for store in stores:
                await store.close()


async def test_processes_raising_a_refunded_total_report_each_rise_once() -> None:
    async with postgres_schema() as url:
        stores = [await PostgresStore.open(url) for _ in range(3)]
        try:
            await stores[0].create_order(new_order(), audit("order.created"))
            amounts = [100 * (i % 7 + 1) for i in range(21)]
            results = await asyncio.gather(
                *(
                    stores[i % 3].raise_amount_refunded("ord_1", amount, audit("order.refunded"))
                    for i, amount in enumerate(amounts)
                )
            )
            # However they interleave, the rises add up to the final total: none counted twice, none lost.
            assert sum(rise for _, rise in results) == max(amounts)
        finally:
            for store in stores:
                await store.close()


async def test_postgres_store_opened_without_migrating_checks_the_schema_and_changes_nothing() -> None:
    async with postgres_schema() as url:
        with pytest.raises(StoreError, match="version 0, older than this gateway's"):
            await PostgresStore.open(url, migrate=False)
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT to_regclass('schema_migrations')") is None
        finally:
            await connection.close()
        await (await PostgresStore.open(url)).close()
        store = await PostgresStore.open(url, migrate=False)
        try:
            assert store.applied_migrations == ()
            await store.ping()
        finally:
            await store.close()


async def _holding(url: str, statement: str, *arguments: object) -> asyncpg.Connection[asyncpg.Record]:
    """A connection of another process, in a transaction that has run `statement` and holds its row locks."""
    connection = await asyncpg.connect(url)
    await connection.execute("BEGIN")
    await connection.execute(statement, *arguments)
    return connection


async def _waiting(task: asyncio.Task[object], url: str) -> None:
    """Until `task`'s statement waits on a lock in the server (polled, with a deadline)."""
    observer = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(10):
            while not await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ):
                assert not task.done(), task
                await asyncio.sleep(0.01)  # the poll interval, bounded by the timeout above
    finally:
        await observer.close()


@pytest.mark.parametrize("other_commits", [True, False])
async def test_an_update_waiting_on_another_processes_update_decides_on_what_it_committed(
    other_commits: bool,
) -> None:
    """Two processes update one order at once: the second waits for the first's row lock, then re-checks the
    version. If the first committed, the second changes nothing (StaleOrder) and writes no audit line; if it
    rolled back, the second applies, once."""
    async with postgres_schema() as url:
        store = await PostgresStore.open(url)
        try:
            await store.create_order(new_order(), audit("order.created"))
            other = await _holding(
                url, "UPDATE orders SET amount = 1700, version = version + 1 WHERE order_id = 'ord_1'"
            )
            update = asyncio.create_task(
                store.update_order("ord_1", 1, OrderUpdate(amount=2000), audit("order.amount_changed"))
            )
            await _waiting(update, url)
            await other.execute("COMMIT" if other_commits else "ROLLBACK")
            await other.close()
            if other_commits:
                with pytest.raises(StaleOrder):
                    await update
                expected = (1700, ["order.created"])
            else:
                assert (await update).amount == 2000
                expected = (2000, ["order.amount_changed", "order.created"])
            order = await store.get_order("ord_1")
            assert order is not None
            assert (order.amount, [e.action for e in await store.list_audit()]) == expected
        finally:
            await store.close()


@pytest.mark.parametrize("other_commits", [True, False])
async def test_a_create_waiting_on_another_processes_insert_of_the_same_order(other_commits: bool) -> None:
    """Two processes create one order at once: the second waits for the first's insert. If it committed, the
    second creates nothing, audits nothing and returns the first's row; if it rolled back, the second creates it."""
    async with postgres_schema() as url:
        store = await PostgresStore.open(url)
        try:
            model, _ = await store.create_order(new_order("ord_model"), audit("order.created", "ord_model"))
            theirs = msgspec.structs.replace(model, order_id="ord_1", owner="user:them")
            insert = numbered(statements.INSERT_ORDER)
            other = await _holding(url, insert, *row(theirs, statements.ORDER_COLUMNS))
            create = asyncio.create_task(
                store.create_order(new_order("ord_1"), audit("order.created", "ord_1"))
            )
            await _waiting(create, url)
            await other.execute("COMMIT" if other_commits else "ROLLBACK")
            await other.close()
            order, created = await create
            assert created is not other_commits
            assert order.owner == ("user:them" if other_commits else new_order("ord_1").owner)
            assert len(await store.list_audit(order_id="ord_1")) == (0 if other_commits else 1)
        finally:
            await store.close()


async def test_postgres_contract_migration_waits_for_an_explicit_migrate_on_a_database_in_use() -> None:
    future = (*MIGRATIONS, CONTRACT_FUTURE)
    async with postgres_schema() as url:
        connection = await asyncpg.connect(url)
        try:
            assert await apply_postgres_migrations(connection, lambda: "x", future[:-1]) != []
            with pytest.raises(StoreError, match=r"migration 6 .* stop every replica of the older version"):
                await apply_postgres_migrations(connection, lambda: "x", future)
            assert await connection.fetchval("SELECT MAX(version) FROM schema_migrations") == LATEST_VERSION
            assert await apply_postgres_migrations(connection, lambda: "x", future, contract=True) == [6]
        finally:
            await connection.close()
        async with postgres_schema() as fresh:
            connection = await asyncpg.connect(fresh)
            try:
                applied = await apply_postgres_migrations(connection, lambda: "x", future)
                assert applied == [m.version for m in future]  # a new database: nobody runs on it yet
            finally:
                await connection.close()
