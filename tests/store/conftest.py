"""Fixtures that give tests a `Store` without naming its backend, so the same tests can run against PostgreSQL
once it exists (add a param to `open_instance`)."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.sqlite import SqliteStore

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


@pytest.fixture(params=["sqlite"])
async def open_instance(
    request: pytest.FixtureRequest, database: Path, clock: FakeClock
) -> AsyncIterator[StoreOpener]:
    """Open instances of the backend under test on one database; all are closed after the test."""
    assert request.param == "sqlite"
    opened: list[Store] = []

    async def open_one() -> Store:
        store = await SqliteStore.open(database, clock=clock)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_instance: StoreOpener) -> Store:
    return await open_instance()
