"""`gateway db migrate`, and the rule it goes with: the operators' other commands check the schema, never migrate it.

During a rolling upgrade the new release's binary is on the hosts before the old replicas are gone; an operator
running `gateway maintenance status` (or `webhooks list`, `refund`, ...) with it must not move the database under
them. Only `gateway serve` and `gateway db migrate` migrate. Real commands, as subprocesses, on real SQLite files.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import aiosqlite

from gateway.store.migrations import LATEST_VERSION, MIGRATIONS, apply_migrations
from tests.support.gateway_process import GATEWAY, clean_env


def _gateway(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY), *arguments],
        cwd=directory,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _versions(database: Path) -> list[int]:
    with sqlite3.connect(database) as connection:
        return [
            row[0] for row in connection.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]


async def _database_of_the_previous_release(directory: Path) -> Path:
    database = directory / "data" / "gateway.sqlite3"
    database.parent.mkdir()
    async with aiosqlite.connect(database, isolation_level=None) as connection:
        await apply_migrations(connection, lambda: "2026-12-01T00:00:00.000Z", MIGRATIONS[:-1])
    return database


async def test_commands_refuse_a_database_not_yet_migrated_and_leave_it_alone(tmp_path: Path) -> None:
    database = await _database_of_the_previous_release(tmp_path)
    before = _versions(database)

    for command in (("maintenance", "status"), ("webhooks", "list")):
        result = _gateway(tmp_path, *command)
        assert result.returncode == 2, result.stderr
        assert f"older than this gateway's ({LATEST_VERSION})" in result.stderr
        assert "gateway db migrate" in result.stderr
    assert _versions(database) == before


async def test_migrate_brings_the_schema_up_once_and_then_the_commands_work(tmp_path: Path) -> None:
    database = await _database_of_the_previous_release(tmp_path)

    first = _gateway(tmp_path, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert f"applied migrations {LATEST_VERSION}; schema at version {LATEST_VERSION}" in first.stdout
    assert _versions(database) == [m.version for m in MIGRATIONS]

    again = _gateway(tmp_path, "db", "migrate", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "database": "sqlite:///data/gateway.sqlite3",
        "applied": [],
        "latest": LATEST_VERSION,
    }
    status = _gateway(tmp_path, "maintenance", "status")
    assert (status.returncode, status.stdout) == (0, "maintenance: off (never switched on)\n")


def test_migrate_creates_the_database_of_a_new_deployment(tmp_path: Path) -> None:
    result = _gateway(tmp_path, "db", "migrate")
    assert result.returncode == 0, result.stderr
    assert _versions(tmp_path / "data" / "gateway.sqlite3") == [m.version for m in MIGRATIONS]
