"""`gateway webhooks list|show|replay`: the operators' view of Stripe's events, from the store alone.

These commands open the store (`DATABASE_URL`) and nothing else: no emulator, no call to Stripe. Each returns a
`CommandResult` (exit code, what to print on stdout and on stderr), so the command line only prints it:

| exit | when |
|---|---|
| 0 | done (a replay that ends `ignored` is done too: the note says why) |
| 1 | no such event, or a replay refused (the event's mode is not the gateway's) |
| 2 | the store: no database at `DATABASE_URL`, unavailable, or failing |
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from gateway.ops.common import existing_store as _store
from gateway.ops.common import operator_name as _operator
from gateway.redaction import scrub
from gateway.settings import Settings
from gateway.store import StoreError, WebhookEvent, WebhookEventStatus
from gateway.webhooks.events import UnusableEvent, parse_event
from gateway.webhooks.service import Receipt, WebhookService

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "CommandResult",
    "EventSummary",
    "format_event",
    "format_json_lines",
    "format_receipt",
    "format_table",
    "list_events",
    "replay_event",
    "show_event",
]

DEFAULT_LIST_LIMIT: Final = 20
EXIT_NOT_FOUND: Final = 1
EXIT_STORE: Final = 2
_MISSING: Final = "-"
_HEADERS: Final = ("RECEIVED", "EVENT", "TYPE", "STATUS", "DELIVERIES", "ORDER", "NOTE")
_DELIVERIES: Final = _HEADERS.index("DELIVERIES")


@dataclass(frozen=True, slots=True)
class CommandResult:
    code: int
    out: str = ""
    """For stdout: complete lines, each ending with a newline (or nothing)."""
    err: str = ""
    """For stderr, likewise."""


class EventSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of `gateway webhooks list --json`: the stored event without its payload."""

    id: str
    type: str
    created: int
    """Stripe's `created` (Unix seconds)."""
    status: WebhookEventStatus
    received_at: str
    applied_at: str | None
    deliveries: int
    order_id: str | None
    note: str | None

    @classmethod
    def of(cls, event: WebhookEvent) -> EventSummary:
        return cls(
            id=event.id,
            type=event.type,
            created=event.created,
            status=event.status,
            received_at=event.received_at,
            applied_at=event.applied_at,
            deliveries=event.deliveries,
            order_id=event.order_id,
            note=event.note,
        )


# -- the commands ------------------------------------------------------------------------------------------------


async def list_events(
    settings: Settings,
    *,
    limit: int = DEFAULT_LIST_LIMIT,
    status: WebhookEventStatus | None = None,
    order_id: str | None = None,
    as_json: bool = False,
) -> CommandResult:
    """The most recent events, newest received first: an aligned table, or one JSON object per line."""
    command = "gateway webhooks list"
    try:
        async with _store(settings) as store:
            events = await store.list_webhook_events(limit=limit, order_id=order_id, status=status)
    except StoreError as error:
        return _store_failure(command, error)
    if as_json:
        return CommandResult(0, format_json_lines(events))
    return CommandResult(0, format_table(events) if events else "no webhook events\n")


async def show_event(settings: Settings, event_id: str) -> CommandResult:
    """One event, its payload pretty-printed."""
    command = "gateway webhooks show"
    try:
        async with _store(settings) as store:
            event = await store.get_webhook_event(event_id)
    except StoreError as error:
        return _store_failure(command, error)
    if event is None:
        return _not_found(command, event_id)
    return CommandResult(0, format_event(event))


async def replay_event(settings: Settings, event_id: str) -> CommandResult:
    """Apply a recorded event again, through `WebhookService.replay` (idempotent: an effect already there is not
    made twice). Refused, without touching the event, when its mode (live/test) is not the gateway's: replaying
    it would only mark it ignored, which is what running the command without the gateway's keys would do."""
    command = "gateway webhooks replay"
    try:
        async with _store(settings) as store:
            event = await store.get_webhook_event(event_id)
            if event is None:
                return _not_found(command, event_id)
            refusal = _mode_mismatch(event, settings)
            if refusal is not None:
                return CommandResult(EXIT_NOT_FOUND, err=f"{command}: {_printable(event_id)}: {refusal}\n")
            try:
                receipt = await WebhookService(store, settings).replay(event_id, actor=_operator())
            except LookupError:  # deleted in between
                return _not_found(command, event_id)
    except StoreError as error:
        return _store_failure(command, error)
    return CommandResult(0, format_receipt(receipt))


# -- formatting --------------------------------------------------------------------------------------------------


def format_table(events: Sequence[WebhookEvent]) -> str:
    """A header and one line per event, columns aligned; the note (last) is not padded. `-` for no value."""
    rows = [_HEADERS] + [
        (
            event.received_at,
            event.id,
            event.type,
            event.status.value,
            str(event.deliveries),
            event.order_id if event.order_id is not None else _MISSING,
            event.note if event.note is not None else _MISSING,
        )
        for event in events
    ]
    cells = [[_printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(_HEADERS) - 1)]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(width) if column == _DELIVERIES else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def format_json_lines(events: Sequence[WebhookEvent]) -> str:
    return "".join(msgspec.json.encode(EventSummary.of(event)).decode() + "\n" for event in events)


def format_event(event: WebhookEvent) -> str:
    created = datetime.datetime.fromtimestamp(event.created, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = (
        ("id", event.id),
        ("type", event.type),
        ("status", event.status.value),
        ("created", f"{created} ({event.created})"),
        ("received at", event.received_at),
        ("applied at", event.applied_at or _MISSING),
        ("deliveries", str(event.deliveries)),
        ("order id", event.order_id or _MISSING),
        ("note", event.note or _MISSING),
    )
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{_printable(value)}" for name, value in fields]
    return "\n".join([*lines, "payload:", format_payload(event.payload)]) + "\n"


def format_payload(payload: bytes) -> str:
    """Stripe's JSON, indented as it came (keys in their order); anything else as text, marked so. Secrets are
    redacted: Stripe puts a PaymentIntent's client secret, and the buyer's e-mail, in its events."""
    try:
        return scrub(msgspec.json.format(payload, indent=2).decode("utf-8", "backslashreplace"))
    except msgspec.DecodeError:
        text = payload.decode("utf-8", "backslashreplace")
        return "(not JSON)\n" + "\n".join(scrub(_printable(line)) for line in text.splitlines())


def format_receipt(receipt: Receipt) -> str:
    """`evt_…: applied (already succeeded)`."""
    note = f" ({receipt.note})" if receipt.note else ""
    return _printable(f"{receipt.event_id}: {receipt.outcome.value}{note}") + "\n"


# -- plumbing ----------------------------------------------------------------------------------------------------


def _mode_mismatch(event: WebhookEvent, settings: Settings) -> str | None:
    try:
        envelope = parse_event(event.payload)
    except UnusableEvent:
        return None  # the service records why
    if envelope.livemode == (not settings.stripe_test_mode):
        return None
    event_mode, mode = ("live", "test") if envelope.livemode else ("test", "live")
    return (
        f"a {event_mode}-mode event, and these settings are {mode} mode (STRIPE_SECRET_KEY):"
        " run the command with the gateway's configuration"
    )


def _not_found(command: str, event_id: str) -> CommandResult:
    return CommandResult(EXIT_NOT_FOUND, err=f"{command}: no webhook event {_printable(event_id)}\n")


def _store_failure(command: str, error: StoreError) -> CommandResult:
    return CommandResult(EXIT_STORE, err=f"{command}: store: {_printable(str(error))}\n")


def _printable(text: str) -> str:
    """One line, no terminal control sequences: what is not printable is shown escaped (`\\n`, `\\x1b`)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
