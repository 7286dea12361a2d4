"""`gateway db backup`: a consistent online copy of either store backend, written under a temporary name, mode
0600, never over an existing file, and restorable.

SQLite runs everywhere. PostgreSQL runs against the server at TEST_POSTGRES_URL (see tests/support/postgres.py) with
Debian's pg_dump/pg_restore: without them the tests skip, saying why, except in CI, where they fail.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from gateway.ops import db
from gateway.store import AuditEntry, NewOrder
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from tests.support.postgres import postgres_schema, postgres_url

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).parent / "gateway"


def new_order(order_id: str) -> NewOrder:
    return NewOrder(order_id=order_id, amount=1500, currency="eur", nonce="n0nce", owner="user_1")


def audit(order_id: str) -> AuditEntry:
    return AuditEntry(
        action="order.create", actor="user_1", request_id="req_1", order_id=order_id, details={}
    )


def command_env(database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV", "DATABASE", "JWT_", "QR_"))
    }
    return env | {"PYTHONPATH": str(REPO), "DATABASE_URL": database_url}


def run_backup(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY), "db", "backup", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- SQLite ------------------------------------------------------------------------------------------------------


async def test_a_sqlite_backup_taken_while_another_connection_writes_is_consistent(tmp_path: Path) -> None:
    database = tmp_path / "store.sqlite3"
    store = await SqliteStore.open(database)
    writer = await SqliteStore.open(database)  # a second gateway, writing all along
    try:
        for number in range(50):
            await store.create_order(new_order(f"ord_{number}"), audit(f"ord_{number}"))
        stop = asyncio.Event()
        written: list[str] = []
        progress = asyncio.Event()

        async def write() -> None:
            while not stop.is_set():
                order_id = f"ord_live_{len(written)}"
                await writer.create_order(new_order(order_id), audit(order_id))
                written.append(order_id)
                progress.set()

        async def written_at_least(count: int) -> None:
            async with asyncio.timeout(30):
                while len(written) < count:
                    progress.clear()
                    await progress.wait()

        writing = asyncio.create_task(write())
        await written_at_least(3)  # the writer is under way before the backup starts
        output = tmp_path / "out" / "backup.sqlite3"
        result = await asyncio.to_thread(db.backup, f"sqlite:///{database}", output)
        await written_at_least(len(written) + 3)  # and still writing after it
        stop.set()
        await writing
    finally:
        await writer.close()
        await store.close()

    assert written, "the writer wrote nothing while the backup ran"
    assert (result.path, result.backend, result.size) == (output, "sqlite", output.stat().st_size)
    assert mode(output) == 0o600
    assert os.listdir(output.parent) == ["backup.sqlite3"]  # no temporary file, no -journal
    copy = sqlite3.connect(output)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
        order_ids = {row[0] for row in copy.execute("SELECT order_id FROM orders")}
        audited = {row[0] for row in copy.execute("SELECT order_id FROM audit_log")}
        migrations = copy.execute("SELECT count(*) FROM schema_migrations").fetchone()
    finally:
        copy.close()
    assert {f"ord_{number}" for number in range(50)} <= order_ids
    assert order_ids == audited  # each order and its audit line were written together: both or neither
    assert order_ids <= {f"ord_{number}" for number in range(50)} | set(written)
    assert migrations is not None
    assert migrations[0] > 0
    # The copy opens as a store: the gateway could run on it.
    restored = await SqliteStore.open(output)
    try:
        assert await restored.get_order("ord_49") is not None
    finally:
        await restored.close()


async def test_the_command_backs_up_sqlite_and_never_overwrites(tmp_path: Path) -> None:
    database = tmp_path / "data" / "gateway.sqlite3"
    database.parent.mkdir()
    store = await SqliteStore.open(database)
    try:
        await store.create_order(new_order("ord_1"), audit("ord_1"))
    finally:
        await store.close()
    env = command_env(f"sqlite:///{database}")

    first = run_backup(env, tmp_path)
    assert first.returncode == 0, first.stderr
    (written,) = (tmp_path / "backups").iterdir()
    assert written.name.startswith("gateway-")
    assert written.name.endswith("Z.sqlite3")
    assert mode(written) == 0o600
    assert mode(tmp_path / "backups") == 0o700
    assert f"wrote backups/{written.name}" in first.stdout
    assert "SQLite" in first.stdout

    output = tmp_path / "chosen.sqlite3"
    output.write_bytes(b"precious")
    again = run_backup(env, tmp_path, "--output", str(output), "--json")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert output.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["backups", "chosen.sqlite3", "data"]


def test_a_missing_sqlite_database_is_a_configuration_error_and_is_not_created(tmp_path: Path) -> None:
    env = command_env(f"sqlite:///{tmp_path / 'nowhere' / 'gateway.sqlite3'}")

    missing = run_backup(env, tmp_path, "--output", str(tmp_path / "b.sqlite3"))

    assert missing.returncode == 2
    assert "no database at" in missing.stderr
    assert "DATABASE_URL=sqlite:///" in missing.stderr
    assert list(tmp_path.iterdir()) == []  # neither the database, its directory, nor a backup


async def test_a_failed_sqlite_backup_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "store.sqlite3"
    await (await SqliteStore.open(database)).close()

    def disk_full(temporary: Path, output: Path) -> None:
        raise db.BackupError("No space left on device")

    monkeypatch.setattr(db, "_publish", disk_full)
    output = tmp_path / "out" / "backup.sqlite3"
    with pytest.raises(db.BackupError) as failure:
        db.backup(f"sqlite:///{database}", output)

    assert failure.value.exit_code == 1
    assert list(output.parent.iterdir()) == []


def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    database = tmp_path / "store.sqlite3"
    database.write_bytes(b"not a database, but long enough to have a header of sorts" * 20)
    with pytest.raises(db.BackupError, match="cannot read") as failure:
        db.backup(f"sqlite:///{database}", tmp_path / "out" / "b.sqlite3")
    assert failure.value.exit_code == 2
    assert not (tmp_path / "out").exists()


# -- PostgreSQL connection parameters, with a stand-in pg_dump -------------------------------------------------


def test_urls_are_shown_without_their_password() -> None:
    assert (
        db.redacted_url("postgresql://gw:s3cr%40t@db.internal:5432/shop?sslmode=require")
        == "postgresql://gw:…@db.internal:5432/shop?sslmode=require"
    )
    assert "hunter2" not in db.redacted_url("postgres://gw@db/shop?password=hunter2")
    assert db.redacted_url("sqlite:///data/gateway.sqlite3") == "sqlite:///data/gateway.sqlite3"


def test_the_connection_reaches_pg_dump_through_its_environment() -> None:
    env, schemas = db.libpq_environment(
        "postgresql://gw:s3cr%40t@db.internal:6543/shop?sslmode=require&search_path=gateway,%24user"
    )
    assert env == {
        "PGHOST": "db.internal",
        "PGPORT": "6543",
        "PGUSER": "gw",
        "PGPASSWORD": "s3cr@t",
        "PGDATABASE": "shop",
        "PGSSLMODE": "require",
        "PGCONNECT_TIMEOUT": "10",
    }
    assert schemas == ["gateway"]


def fake_pg_dump(bin_dir: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir()
    pg_dump = bin_dir / "pg_dump"
    pg_dump.write_text(f"#!/bin/sh\n{script}\n")
    pg_dump.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_the_password_is_never_on_pg_dumps_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    fake_pg_dump(
        tmp_path / "bin",
        f'echo "$@" >{seen}.args; echo "$PGPASSWORD" >{seen}.password\n'
        'for a; do case "$a" in --file=*) echo dump >"${a#--file=}";; esac; done',
        monkeypatch,
    )
    output = tmp_path / "out" / "b.dump"

    result = db.backup("postgresql://gw:hunter2secret@db.internal/shop?search_path=gw", output)

    args = Path(f"{seen}.args").read_text()
    assert "hunter2secret" not in args
    assert "--format=custom" in args
    assert "--schema=gw" in args
    assert "--no-password" in args
    assert Path(f"{seen}.password").read_text().strip() == "hunter2secret"
    assert "hunter2secret" not in result.database
    assert (result.backend, output.read_text(), mode(output)) == ("postgresql", "dump\n", 0o600)
    assert os.listdir(output.parent) == ["b.dump"]


def test_a_pg_dump_older_than_the_server_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pg_dump(
        tmp_path / "bin",
        "echo 'pg_dump: error: aborting because of server version mismatch' >&2\n"
        "echo 'pg_dump: detail: server version: 17.2; pg_dump version: 15.20' >&2\nexit 1",
        monkeypatch,
    )
    output = tmp_path / "out" / "b.dump"
    with pytest.raises(db.BackupError) as failure:
        db.backup("postgresql://gw:hunter2secret@db.internal/shop", output)

    assert failure.value.exit_code == 2
    assert "pg_dump is older than the PostgreSQL server" in failure.value.message
    assert "server version: 17.2; pg_dump version: 15.20" in failure.value.message
    assert list(output.parent.iterdir()) == []


# -- PostgreSQL, for real ------------------------------------------------------------------------------------------


def _postgres_tools() -> None:
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian: apt-get install postgresql-client)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must test PostgreSQL backups", pytrace=False)
        pytest.skip(message)


def pg_restore_list(dump: Path) -> str:
    return subprocess.run(
        ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def pg_restore(url: str, dump: Path, *options: str) -> None:
    env, _ = db.libpq_environment(url)
    completed = subprocess.run(
        ["pg_restore", "--no-owner", *options, "-d", env["PGDATABASE"], str(dump)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


async def test_a_postgresql_backup_restores(tmp_path: Path) -> None:
    _postgres_tools()
    async with postgres_schema() as url:
        schema = url.rpartition("search_path=")[2]
        store = await PostgresStore.open(url)
        try:
            for number in range(20):
                await store.create_order(new_order(f"ord_{number}"), audit(f"ord_{number}"))
        finally:
            await store.close()
        output = tmp_path / "pg" / "backup.dump"

        made = run_backup(command_env(url), tmp_path, "--output", str(output))

        assert made.returncode == 0, made.stderr
        assert f"wrote {output}" in made.stdout
        assert "PostgreSQL" in made.stdout
        assert mode(output) == 0o600
        assert os.listdir(output.parent) == ["backup.dump"]
        listing = pg_restore_list(output)
        assert f"TABLE DATA {schema} orders" in listing
        assert f"TABLE DATA {schema} schema_migrations" in listing

        # The schema is lost; the backup brings it back, whole.
        admin = await asyncpg.connect(postgres_url())
        try:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await admin.close()
        pg_restore(url, output)
        restored = await PostgresStore.open(url)
        try:
            orders = [await restored.get_order(f"ord_{number}") for number in range(20)]
            assert all(order is not None and order.amount == 1500 for order in orders)
            await restored.create_order(new_order("ord_after"), audit("ord_after"))
        finally:
            await restored.close()

        # Restoring over a live schema (--clean --if-exists, as documented) returns it to the backup's state.
        pg_restore(url, output, "--clean", "--if-exists")
        again = await PostgresStore.open(url)
        try:
            assert await again.get_order("ord_19") is not None
            assert await again.get_order("ord_after") is None
        finally:
            await again.close()


async def test_a_failing_pg_dump_leaves_no_file(tmp_path: Path) -> None:
    _postgres_tools()
    async with postgres_schema() as url:
        # A search_path naming a schema that does not exist: pg_dump finds nothing to dump, and says so.
        missing = url.replace("search_path=", "search_path=no_such_schema_")
        output = tmp_path / "pg" / "backup.dump"

        failed = run_backup(command_env(missing), tmp_path, "--output", str(output))

        assert failed.returncode == 1, failed.stderr
        assert "pg_dump failed" in failed.stderr
        assert "no matching schemas" in failed.stderr
        assert list(output.parent.iterdir()) == []


async def test_without_hard_links_the_backup_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "store.sqlite3"
    await (await SqliteStore.open(database)).close()

    def no_link(source: object, target: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    output = tmp_path / "out" / "backup.sqlite3"
    await asyncio.to_thread(db.backup, f"sqlite:///{database}", output)

    assert os.listdir(output.parent) == ["backup.sqlite3"]
    assert mode(output) == 0o600
