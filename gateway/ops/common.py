"""What the operators' commands share: who runs them, and the store they act on."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import AsyncIterator

from gateway.settings import ConfigurationError, Settings
from gateway.store import Store, StoreError, is_postgres_url, open_store, sqlite_path

__all__ = ["existing_store", "operator_name"]


def operator_name() -> str:
    """Who runs the command, for the audit trail: `operator:<login name>` (under sudo, the person, not root)."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        return f"operator:{sudo_user}"
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "operator"


@contextlib.asynccontextmanager
async def existing_store(settings: Settings) -> AsyncIterator[Store]:
    """The store at DATABASE_URL, which must exist: a mistyped path or the wrong directory is an error, not a
    new empty database. (A PostgreSQL database must exist to be connected to at all.) Its schema is checked, never
    migrated: an operator's command run with a new release during a rolling upgrade must not migrate the database
    under the old replicas (`gateway serve` and `gateway db migrate` do that)."""
    if not is_postgres_url(settings.database_url):
        try:
            path = sqlite_path(settings.database_url)
        except ValueError as error:
            raise ConfigurationError(f"DATABASE_URL: {error}") from None
        if not path.is_file():
            raise StoreError(f"no database at {path} (DATABASE_URL={settings.database_url})")
    store = await open_store(settings.database_url, migrate=False)
    try:
        yield store
    finally:
        await store.close()
