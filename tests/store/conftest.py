"""Fixtures that give tests a `Store` without naming its backend: `open_instance` (and so `store`) is parametrized
by backend, so every backend-neutral test runs once on SQLite and once on PostgreSQL.

PostgreSQL: the server at TEST_POSTGRES_URL (default `postgresql://postgres@127.0.0.1:5432/test`). Each test gets
a fresh schema of its own in that database (created before, dropped after), reached through the URL's
`search_path`, as an operator would point a gateway at a schema; so tests never see each other's rows, and need
no right to create databases. When no server answers, the PostgreSQL tests skip, saying so, except in CI (`CI`
set), where they fail: CI runs PostgreSQL, and a silently skipped backend would be an untested one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from gateway.store import Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore

__all__ = ["FakeClock", "StoreOpener", "postgres_url", "with_search_path"]

StoreOpener = Callable[[], Awaitable[Store]]
"""Opens one more instance on the test's database (as a second gateway process would)."""

_DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_unreachable: list[str] = []
"""Why the server did not answer, once known: later tests skip (or fail) at once instead of waiting again."""


class FakeClock:
    """A clock that moves 1 ms per reading, and further only when told: every timestamp the store writes is
    distinct and ordered, and expiry can be tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2024, 1, 15, 10, 30, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


def postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", _DEFAULT_POSTGRES_URL)


def with_search_path(url: str, schema: str) -> str:
    """`url` with the connections' search_path set to `schema` (asyncpg passes extra query parameters on as
    server settings)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query = [(key, value) for key, value in query if key != "search_path"] + [("search_path", schema)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _no_postgres(reason: str) -> None:
    message = f"no PostgreSQL at {postgres_url()} ({reason}); set TEST_POSTGRES_URL to test that backend"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run PostgreSQL", pytrace=False)
    pytest.skip(message)


async def _admin_connection() -> asyncpg.Connection[asyncpg.Record]:
    if _unreachable:
        _no_postgres(_unreachable[0])
    try:
        return await asyncpg.connect(postgres_url(), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        _unreachable.append(f"{type(error).__name__}: {error}")
        _no_postgres(_unreachable[0])
        raise  # unreachable: skip and fail raise


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A URL of the test database whose connections use a fresh, empty schema of their own; dropped after."""
    admin = await _admin_connection()
    schema = f"store_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(postgres_url(), schema)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"])
async def open_instance(
    request: pytest.FixtureRequest, database: Path, clock: FakeClock
) -> AsyncIterator[StoreOpener]:
    """Open instances of the backend under test on one database; all are closed after the test."""
    opened: list[Store] = []
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "postgres":
            url = await stack.enter_async_context(postgres_schema())

            async def open_one() -> Store:
                store = await PostgresStore.open(url, clock=clock)
                opened.append(store)
                return store

        else:
            assert request.param == "sqlite"

            async def open_one() -> Store:
                store = await SqliteStore.open(database, clock=clock)
                opened.append(store)
                return store

        yield open_one
        for store in opened:  # before the schema is dropped
            await store.close()


@pytest.fixture
async def store(open_instance: StoreOpener) -> Store:
    return await open_instance()
