"""Models to rows and back, for every backend: column lists, parameter values, decoding, audit lines.

Pure functions with no database driver, so a backend module loads only its own driver.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeVar

import msgspec

from gateway.store.base import StoreError
from gateway.store.models import (
    MAINTENANCE_OFF,
    AuditEntry,
    Maintenance,
    OrderUpdate,
)

__all__ = [
    "AUDIT_COLUMNS",
    "audit_entry",
    "audit_row",
    "columns",
    "decode",
    "maintenance",
    "order_changes",
    "row",
    "sql_value",
]

_S = TypeVar("_S", bound=msgspec.Struct)

AUDIT_COLUMNS: Final = ("id", "at", "actor", "request_id", "order_id", "action", "details")

_details_decoder: Final = msgspec.json.Decoder(dict[str, object])


def columns(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    """The columns of a table that mirrors `struct` field by field."""
    return struct.__struct_fields__


def sql_value(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def row(record: msgspec.Struct, names: Sequence[str]) -> list[object]:
    return [sql_value(getattr(record, name)) for name in names]


def decode(values: Iterable[object] | None, names: Sequence[str], struct: type[_S]) -> _S:
    """A row back into its model, validated: a value the model does not allow (a corrupt row) is an error."""
    if values is None:  # a row read right after its insert, in the same transaction: cannot be missing
        raise StoreError(f"no {struct.__name__} row where one was just written")
    try:
        return msgspec.convert(dict(zip(names, values, strict=True)), type=struct)
    except msgspec.ValidationError as error:
        raise StoreError(f"unreadable {struct.__name__} row: {error}") from error


def order_changes(update: OrderUpdate) -> dict[str, object]:
    """The columns `update` sets (UNSET fields are left alone; None writes NULL), as SQL values."""
    return {
        field: sql_value(value)
        for field in columns(OrderUpdate)
        if (value := getattr(update, field)) is not msgspec.UNSET
    }


def audit_row(audit: AuditEntry, now: str) -> list[object]:
    """Encoded before the transaction starts, so an unencodable `details` fails without touching the database.
    The values of AUDIT_COLUMNS but the id."""
    details = msgspec.json.encode(audit.details).decode()
    return [audit.at or now, audit.actor, audit.request_id, audit.order_id, audit.action, details]


def maintenance(rows: Sequence[Iterable[Any]]) -> Maintenance:
    if not rows:
        return MAINTENANCE_OFF
    enabled, message, changed_at, changed_by = tuple(rows[0])
    return Maintenance(enabled=bool(enabled), message=message, changed_at=changed_at, changed_by=changed_by)


def audit_entry(values: Iterable[Any]) -> AuditEntry:
    entry_id, at, actor, request_id, order_id, action, details = tuple(values)
    return AuditEntry(
        id=entry_id,
        at=at,
        actor=actor,
        request_id=request_id,
        order_id=order_id,
        action=action,
        details=_details_decoder.decode(details),
    )
