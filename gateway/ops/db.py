"""`gateway db backup [--output PATH] [--json]`: the seed's daily backup, for both store backends, safe to run
while gateways serve traffic. (And `gateway db migrate`: see MIGRATE_HELP.)

SQLite: a consistent online copy of the file at DATABASE_URL through SQLite's backup API (one read transaction:
in WAL mode the gateways keep writing meanwhile), checked (`PRAGMA quick_check`) and switched out of WAL so that
it is one self-contained file. The database is never created nor migrated: a missing file is an error.

PostgreSQL: `pg_dump --format=custom` (Debian's postgresql-client) of the database at DATABASE_URL, or only of the
schemas of its `search_path` when the URL names one. The connection parameters reach pg_dump through its
environment (PGHOST, PGPASSWORD, ...), never its command line, which `ps` shows to every user.

Either way the backup is written under a temporary name in the output's directory, with mode 0600 (it holds
payment data), and linked to its final name only once complete: there is never a half-written backup under the
final name, and an existing file is never overwritten.

| exit | when |
|---|---|
| 0 | the backup was written |
| 1 | the backup failed (nothing is left under the output's name, nor any temporary file) |
| 2 | configuration or store error: DATABASE_URL, a missing database, an unreachable server, the output exists, pg_dump missing or too old for the server |
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import errno
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from gateway.settings import Settings
from gateway.store import StoreError, is_postgres_url, open_store, sqlite_path
from gateway.store.migrations import LATEST_VERSION

__all__ = [
    "BackupError",
    "BackupResult",
    "add_command",
    "backup",
    "default_output",
    "libpq_environment",
    "redacted_url",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIGURATION: Final = 2

BACKUP_DIRECTORY: Final = Path("backups")
"""Where backups go without --output, relative to the working directory."""

_SQLITE_BUSY_TIMEOUT_S: Final = 30.0
_PG_CONNECT_TIMEOUT_S: Final = "10"

# libpq's URI query parameters that have an environment variable; the others (asyncpg passes them on as server
# settings, e.g. search_path) are not connection parameters for pg_dump.
_LIBPQ_QUERY_ENV: Final = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
_NO_HARD_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})
_SECRET_QUERY_KEYS: Final = frozenset({"password", "sslpassword"})

RESTORE_HELP: Final = """\
Restore (stop every gateway first: a restore replaces the data they work on):
  SQLite      stop the gateways, copy the backup over the file at DATABASE_URL (remove any leftover
              <file>-wal and <file>-shm beside it), start the gateways:
                cp backups/gateway-20240115T030000Z.sqlite3 data/gateway.sqlite3
  PostgreSQL  stop the gateways, then, with the connection in PGHOST/PGUSER/PGPASSWORD/PGDATABASE:
                pg_restore --clean --if-exists --no-owner -d DATABASE backups/gateway-20240115T030000Z.dump
              and start the gateways.

Check a backup (do it now and then: a backup never restored is a hope, not a backup):
  SQLite      sqlite3 backups/gateway-….sqlite3 'PRAGMA integrity_check'     (prints: ok)
  PostgreSQL  pg_restore --list backups/gateway-….dump                      (lists the tables and data)

Daily, at 03:15 UTC, from cron (crontab -e, as the gateway's user, in its working directory):
  15 3 * * *  cd /srv/gateway && .venv/bin/gateway db backup 2>&1 | logger -t gateway-backup

Exit codes: 0 written; 1 the backup failed; 2 configuration or store error (DATABASE_URL, a missing database,
an unreachable server, an existing output, pg_dump missing or older than the server).
"""


class BackupError(Exception):
    """The backup failed; `exit_code` says whether it is the configuration/store (2) or the backup itself (1)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    backend: str
    """`sqlite` or `postgresql`."""
    database: str
    """DATABASE_URL without its password."""


# -- URLs ---------------------------------------------------------------------------------------------------------


def redacted_url(database_url: str) -> str:
    """`database_url` without its password (in the user part or as a `password=` query parameter)."""
    if not is_postgres_url(database_url):
        return database_url  # a SQLite URL names a file, no secret
    try:
        parts = urllib.parse.urlsplit(database_url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:…@{hostport}" if has_password else f"{user}@{hostport}"
        query = [
            (key, "…" if key in _SECRET_QUERY_KEYS else value)
            for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urllib.parse.urlunsplit(
            parts._replace(netloc=netloc, query=urllib.parse.urlencode(query, safe="…/,$"))
        )
    except ValueError:
        return "<unparsable database URL>"


def libpq_environment(database_url: str) -> tuple[dict[str, str], list[str]]:
    """The libpq environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...) that connect to
    `database_url`, and the schemas of its `search_path` (empty: none named). Raises ValueError for a URL that
    cannot be parsed."""
    parts = urllib.parse.urlsplit(database_url)
    env: dict[str, str] = {}
    if parts.hostname:
        env["PGHOST"] = urllib.parse.unquote(parts.hostname)
    if parts.port is not None:  # raises ValueError for a port that is not a number
        env["PGPORT"] = str(parts.port)
    if parts.username:
        env["PGUSER"] = urllib.parse.unquote(parts.username)
    if parts.password is not None:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    database = urllib.parse.unquote(parts.path.removeprefix("/"))
    if database:
        env["PGDATABASE"] = database
    schemas: list[str] = []
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key in _LIBPQ_QUERY_ENV:
            env[_LIBPQ_QUERY_ENV[key]] = value
        elif key == "search_path":
            schemas = [
                name.strip().strip('"')
                for name in value.split(",")
                if name.strip() and name.strip() not in ("$user", "pg_catalog", "pg_temp")
            ]
    env.setdefault("PGCONNECT_TIMEOUT", _PG_CONNECT_TIMEOUT_S)
    return env, schemas


def default_output(backend: str, now: datetime.datetime | None = None) -> Path:
    """`backups/gateway-<UTC yyyymmddThhmmssZ>.sqlite3` (`.dump` for PostgreSQL), relative to the working
    directory."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = ".dump" if backend == "postgresql" else ".sqlite3"
    return BACKUP_DIRECTORY / f"gateway-{stamp}{suffix}"


# -- writing under a temporary name ------------------------------------------------------------------------------


def _prepare_output(output: Path) -> Path:
    """Check that `output` does not exist, create its directory (0700) if needed, and create (0600, exclusively)
    the temporary file beside it that the backup is written to; returns the temporary file's path."""
    if output.exists() or output.is_symlink():
        raise BackupError(f"{output} already exists: not overwriting it", EXIT_CONFIGURATION)
    directory = output.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(
            f"cannot create {directory}: {error.strerror or error}", EXIT_CONFIGURATION
        ) from None
    temporary = directory / f".{output.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise BackupError(
            f"cannot write in {directory}: {error.strerror or error}", EXIT_CONFIGURATION
        ) from None
    os.close(fd)
    return temporary


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal")):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            print(f"gateway db backup: could not remove {leftover}: {error.strerror}", file=sys.stderr)


def _publish(temporary: Path, output: Path) -> None:
    """Make the complete backup at `temporary` appear as `output`, atomically and without overwriting: a hard
    link fails if `output` appeared meanwhile (where `rename` would replace it)."""
    os.chmod(temporary, 0o600)
    fd = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, output)
    except FileExistsError:
        raise BackupError(
            f"{output} appeared during the backup: not overwriting it", EXIT_CONFIGURATION
        ) from None
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise BackupError(f"cannot create {output}: {error.strerror or error}") from None
        # A file system without hard links (vfat, some network mounts): check, then rename (which would replace a
        # file created in between: unlikely, and the best such a file system offers).
        if output.exists():
            raise BackupError(
                f"{output} appeared during the backup: not overwriting it", EXIT_CONFIGURATION
            ) from None
        try:
            os.rename(temporary, output)
        except OSError as rename_error:
            raise BackupError(f"cannot create {output}: {rename_error.strerror or rename_error}") from None
    else:
        temporary.unlink()
    try:
        directory_fd = os.open(output.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory_fd)
    except OSError:
        pass
    finally:
        os.close(directory_fd)


# -- SQLite ------------------------------------------------------------------------------------------------------


def _open_sqlite_source(path: Path, database_url: str) -> sqlite3.Connection:
    """The database at `path`, read-only (never created: a missing file is an error naming DATABASE_URL)."""
    if not path.is_file():
        raise BackupError(f"no database at {path} (DATABASE_URL={database_url})", EXIT_CONFIGURATION)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        source = sqlite3.connect(uri, uri=True, timeout=_SQLITE_BUSY_TIMEOUT_S)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open {path}: {error}", EXIT_CONFIGURATION) from None
    try:
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as error:
        source.close()
        raise BackupError(
            f"cannot read {path} (DATABASE_URL={database_url}): {error}", EXIT_CONFIGURATION
        ) from None
    return source


def _sqlite_backup(database_url: str, output: Path) -> None:
    path = sqlite_path(database_url)
    source = _open_sqlite_source(path, database_url)
    try:
        temporary = _prepare_output(output)
        try:
            target = sqlite3.connect(temporary)
            try:
                # One step (pages=-1): the whole copy is taken in one read transaction, a consistent snapshot; in
                # WAL mode the gateways' writes go on meanwhile.
                source.backup(target, pages=-1)
                # A self-contained file: no -wal/-shm beside it when it is opened (restored or checked).
                target.execute("PRAGMA journal_mode = DELETE").fetchall()
                verdict = target.execute("PRAGMA quick_check").fetchall()
                if verdict != [("ok",)]:
                    raise BackupError(f"the copy of {path} fails its check: {verdict[:5]}")
            finally:
                target.close()
            _publish(temporary, output)
        except sqlite3.Error as error:
            raise BackupError(f"backing up {path} failed: {error}") from None
        finally:
            _remove(temporary)
    finally:
        source.close()


# -- PostgreSQL ----------------------------------------------------------------------------------------------------


def _pg_dump_failure(stderr: str, secrets_: list[str]) -> BackupError:
    for secret in secrets_:
        if secret:
            stderr = stderr.replace(secret, "…")
    detail = stderr.strip() or "pg_dump failed, saying nothing"
    if "server version mismatch" in detail:
        return BackupError(
            "pg_dump is older than the PostgreSQL server, and cannot dump a newer server's database: install the "
            "client of the server's major version (Debian: postgresql-client-<major>, from apt.postgresql.org when "
            f"the release lacks it) and run it (PATH, or /usr/lib/postgresql/<major>/bin/pg_dump).\n{detail}",
            EXIT_CONFIGURATION,
        )
    if "connection to server" in detail or "could not connect" in detail or "authentication failed" in detail:
        return BackupError(f"cannot connect to the database: {detail}", EXIT_CONFIGURATION)
    return BackupError(f"pg_dump failed: {detail}")


def _postgres_backup(database_url: str, output: Path) -> None:
    try:
        connection, schemas = libpq_environment(database_url)
    except ValueError as error:
        raise BackupError(f"DATABASE_URL: {error}", EXIT_CONFIGURATION) from None
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed (Debian: apt-get install postgresql-client)", EXIT_CONFIGURATION
        )
    temporary = _prepare_output(output)
    try:
        command = [pg_dump, "--format=custom", "--no-password", f"--file={temporary}"]
        command += [f"--schema={schema}" for schema in schemas]
        try:
            completed = subprocess.run(  # noqa: S603 - pg_dump from PATH, no shell; the secrets are in env
                command,
                env={**os.environ, **connection},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
        except OSError as error:
            raise BackupError(
                f"cannot run {pg_dump}: {error.strerror or error}", EXIT_CONFIGURATION
            ) from None
        if completed.returncode != 0:
            raise _pg_dump_failure(completed.stderr, [connection.get("PGPASSWORD", "")])
        _publish(temporary, output)
    finally:
        _remove(temporary)


# -- the command -------------------------------------------------------------------------------------------------


def backup(database_url: str, output: Path | None = None) -> BackupResult:
    """Back up the store at `database_url` to `output` (default: `default_output`). Raises BackupError."""
    backend = "postgresql" if is_postgres_url(database_url) else "sqlite"
    if backend == "sqlite":
        try:
            sqlite_path(database_url)
        except ValueError as error:
            raise BackupError(f"DATABASE_URL: {error}", EXIT_CONFIGURATION) from None
    output = output if output is not None else default_output(backend)
    if backend == "postgresql":
        _postgres_backup(database_url, output)
    else:
        _sqlite_backup(database_url, output)
    return BackupResult(
        path=output, size=output.stat().st_size, backend=backend, database=redacted_url(database_url)
    )


def _backup_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = backup(settings.database_url, args.output)
    except BackupError as error:
        print(f"gateway db backup: {error.message}", file=sys.stderr)
        return error.exit_code
    if args.json:
        document = {
            "path": str(result.path),
            "bytes": result.size,
            "backend": result.backend,
            "database": result.database,
        }
        print(json.dumps(document, ensure_ascii=False))
    else:
        backend = "PostgreSQL" if result.backend == "postgresql" else "SQLite"
        print(f"wrote {result.path} ({result.size:,} bytes): {backend} backup of {result.database}")
    return EXIT_OK


MIGRATE_HELP: Final = """\
Brings the database at DATABASE_URL to this gateway's schema and exits: what `gateway serve` does as it starts,
as a step of its own (before a rolling upgrade, say), and the only way a contract migration (one that older
gateways cannot run on) is applied to a database in use: stop the older replicas first. Migrations run one
process at a time, each in one transaction; running it again does nothing. A database migrated by a newer
gateway is left as it is, and refused unless every newer migration declares that this gateway can run on it.
Exit codes: 0 done (or nothing to do), 2 configuration or store error.
"""


async def _migrate(database_url: str) -> tuple[int, ...]:
    # Contract migrations too: this command is the operator's deliberate step, taken once the older replicas are
    # stopped; `gateway serve` never applies them to a database in use.
    store = await open_store(database_url, contract=True)
    try:
        return store.applied_migrations
    finally:
        await store.close()


def _migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    where = redacted_url(settings.database_url)
    try:
        applied = asyncio.run(_migrate(settings.database_url))
    except (StoreError, ValueError) as error:
        print(f"gateway db migrate: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    if args.json:
        print(
            msgspec.json.encode(
                {"database": where, "applied": list(applied), "latest": LATEST_VERSION}
            ).decode()
        )
    elif applied:
        print(f"{where}: applied migrations {', '.join(map(str, applied))}; schema at version {applied[-1]}")
    else:
        print(f"{where}: nothing to do (schema at version {LATEST_VERSION} or a compatible newer one)")
    return EXIT_OK


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "db",
        help="the store's database: backup, migrate",
        description="The store's database (DATABASE_URL).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(logs_to_stderr=True)
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    backup_parser = actions.add_parser(
        "backup",
        help="a consistent copy of the store, safe while gateways run (SQLite file, or pg_dump custom format)",
        description=__doc__,
        epilog=RESTORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backup_parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="the backup file to create (never overwritten); default: backups/gateway-<UTC yyyymmddThhmmssZ>"
        ".sqlite3 (.dump for PostgreSQL) in the working directory",
    )
    backup_parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    backup_parser.set_defaults(run=_backup_command)
    migrate_parser = actions.add_parser(
        "migrate",
        help="bring the database to this gateway's schema (what `gateway serve` does at start-up), and exit",
        description=MIGRATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate_parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    migrate_parser.set_defaults(run=_migrate_command)
