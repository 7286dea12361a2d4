"""The PostgreSQL server the tests use: TEST_POSTGRES_URL (default `postgresql://postgres@127.0.0.1:5432/test`).

`postgres_schema()` gives a test a fresh schema of its own in that database (created before, dropped after),
reached through the URL's `search_path`, as an operator would point a gateway at a schema; so tests never see each
other's rows, and need no right to create databases. When no server answers, the PostgreSQL tests skip, saying so,
except in CI (`CI` set), where they fail: CI runs PostgreSQL, and a silently skipped backend would be an untested
one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg
import pytest

__all__ = ["postgres_schema", "postgres_url", "with_search_path"]

_DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_unreachable: list[str] = []
"""Why the server did not answer, once known: later tests skip (or fail) at once instead of waiting again."""


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
