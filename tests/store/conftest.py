"""Fixtures that give tests a `Store` without naming its backend: `open_instance` (and so `store`) is parametrized
by backend, so every backend-neutral test runs once on SQLite and once on PostgreSQL.

PostgreSQL: each test gets a fresh schema of its own on the tests' server (`tests.support.postgres`), and skips
when no server answers, except in CI, where it fails.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from tests.support.postgres import postgres_schema

__all__ = ["FakeClock", "StoreOpener"]

StoreOpener = Callable[[], Awaitable[Store]]
"""Opens one more instance on the test's database (as a second gateway process would)."""


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
