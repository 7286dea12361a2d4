"""`gateway refund`: refund one order (`--order-id`), or every order of a CSV file (`--from-file`).

Every refund goes through `PaymentService.refund`, the code path of the tRPC procedure `stripe.refund`: the refund
is recorded as a request before Stripe is asked, and an answer lost on the way back is found at Stripe rather than
made again. What the command adds is what a person at a terminal needs: it shows the order first, asks before
acting (`--yes` skips the question, `--dry-run` only looks), names the operator in the audit trail
(`operator:<login>`, admin rights) and gives each refund an idempotency key derived from what was asked:

    gateway-refund:<sha256 of [order id, amount or "total", --idempotency-key or ""], 40 hex digits>

So the same command run again — after a lost answer, a crash, a closed terminal — is answered with the refund it
already made (never a second one), while another amount or a new `--idempotency-key` is another refund. The reason
is not part of the key: the same refund asked again with another reason is refused, not made twice.

The bulk mode gives each line of the file the key of the same command for that order and amount, and keeps a
report CSV (one row per order, the latest outcome last) that a re-run reads to skip the orders already refunded.
Rows are appended and synced to disk as each order ends, so even a killed run leaves a usable report; and an order
whose row was lost (a crash between Stripe's answer and the row) is answered by its key on the re-run.

| exit | when |
|---|---|
| 0 | done: refunded, or nothing to do (already refunded by an earlier run), or a dry run |
| 1 | a refund failed or cannot be made (one line says what to do), or the confirmation was declined |
| 2 | usage: bad options, stdin not a terminal without `--yes`, a malformed file or report (nothing done) |
| 130 | interrupted (Ctrl-C): the bulk report is written and says where to resume |
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import enum
import hashlib
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import msgspec

from gateway.errors import ErrorCode, TRPCError
from gateway.local_stripe import read_emulator_state
from gateway.logs import now_iso
from gateway.ops.common import existing_store, operator_name
from gateway.payments import Actor, PaymentService
from gateway.payments.currencies import MAX_AMOUNT, THREE_DECIMAL, ZERO_DECIMAL
from gateway.settings import Settings
from gateway.store import Refund, RefundRequest, RefundRequestStatus, Store, StoreError
from gateway.stripe_api import FailureKind, StripeApi, StripeCallError
from schemas.stripe import PaymentStatusResult, RefundResult

__all__ = [
    "DEFAULT_RATE",
    "REPORT_FIELDS",
    "FileRefused",
    "Outcome",
    "RateLimiter",
    "ReportRow",
    "add_command",
    "format_money",
    "idempotency_key",
    "read_orders_file",
    "read_report",
    "run",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
DEFAULT_RATE: Final = 5.0
"""Refunds a second in bulk: each refund is about five Stripe calls, and Stripe allows 25 a second in test mode
(100 live)."""
REASONS: Final = ("duplicate", "fraudulent", "requested_by_customer")
KEY_PREFIX: Final = "gateway-refund:"
FILE_COLUMNS: Final = ("order_id", "amount", "reason")
REPORT_FIELDS: Final = (
    "order_id",
    "requested_amount",
    "outcome",
    "refund_id",
    "amount_refunded",
    "currency",
    "error",
    "at",
)
MAX_ORDER_ID: Final = 200
MAX_PROBLEMS_SHOWN: Final = 20
_FAILURES: Final = (TRPCError, StripeCallError, StoreError)
"""What a refund can fail with, each turned into one line saying what to do."""
_STRIPE_REFUSALS: Final = frozenset({FailureKind.CARD, FailureKind.INVALID_REQUEST, FailureKind.NOT_FOUND})


class FileRefused(Exception):
    """An orders file or report the command will not start with; the message names the lines."""


# -- what is asked, and what will happen -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundAsk:
    """One refund the operator asks for: `amount` None is everything not refunded yet; `line` is in the file."""

    order_id: str
    amount: int | None
    reason: str | None
    line: int = 0


class Verdict(enum.Enum):
    REFUND = "refund"
    """To be made now (or an earlier run's unfinished request finished): PaymentService.refund decides."""
    DONE = "done"
    """Made by an earlier run under the same key: PaymentService.refund answers with it, nothing new."""
    SKIP = "skip"
    """Nothing to do: everything is refunded already and everything was asked."""
    FAIL = "fail"
    """Cannot be made: `problem` says why and what to do."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the command will do for one ask, from the order as the gateway knows it and the refund request an
    earlier run made under the same key. Stripe's charge has the last word when the refund is made."""

    ask: RefundAsk
    key: str
    verdict: Verdict
    order: PaymentStatusResult | None = None
    amount: int | None = None
    """REFUND: what Stripe will be asked for. DONE: what the earlier run refunded."""
    problem: str = ""
    """FAIL, SKIP: why. REFUND: a note, when an earlier run's request is being finished."""
    earlier: RefundRequest | None = None

    @property
    def currency(self) -> str:
        return self.order.currency if self.order is not None else ""


def idempotency_key(order_id: str, amount: int | None, salt: str = "") -> str:
    """The key of "refund `amount` (None: everything left) of `order_id`": the same ask always gets the same key,
    so it is made once; `salt` (`--idempotency-key`) makes a deliberate second refund of the same amount."""
    material = msgspec.json.encode([order_id, "total" if amount is None else amount, salt])
    return KEY_PREFIX + hashlib.sha256(material).hexdigest()[:40]


def format_money(amount: int, currency: str) -> str:
    """`1000, "eur"` → `10.00 EUR`; zero-decimal (JPY) and three-decimal (KWD) currencies as Stripe counts them."""
    digits = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    if digits == 0:
        return f"{amount} {currency.upper()}"
    whole, fraction = divmod(amount, 10**digits)
    return f"{whole}.{fraction:0{digits}d} {currency.upper()}"


@dataclass(frozen=True, slots=True)
class Session:
    store: Store
    payments: PaymentService
    actor: Actor


@asynccontextmanager
async def open_session(settings: Settings, actor: Actor) -> AsyncIterator[Session]:
    """The gateway's store and Stripe, and a PaymentService on them, as the server builds it."""
    async with existing_store(settings) as store:
        stripe = StripeApi(settings)
        try:
            yield Session(store, PaymentService(store, stripe, settings), actor)
        finally:
            await stripe.close()


async def plan_refund(session: Session, ask: RefundAsk, key: str) -> Plan:
    """Decide from the order's status (`payment_status`, the status query's read: a payment not final yet is
    checked with Stripe) and from the request an earlier run made under `key`, if any."""
    try:
        order = await session.payments.payment_status(ask.order_id, session.actor)
    except TRPCError as error:
        if error.code is not ErrorCode.NOT_FOUND:
            raise
        problem = f"no order {ask.order_id!r} in the store (DATABASE_URL): check the id (the app's order id)"
        return Plan(ask, key, Verdict.FAIL, problem=problem)
    earlier = await session.store.get_refund_request(caller_key=key)
    if earlier is not None:
        plan = _plan_from_earlier(ask, key, order, earlier)
        if plan is not None:
            return plan
    return _plan_from_order(ask, key, order)


def _plan_from_earlier(
    ask: RefundAsk, key: str, order: PaymentStatusResult, earlier: RefundRequest
) -> Plan | None:
    """An earlier run asked this very refund: its outcome stands (None: it never reached Stripe; decide afresh)."""
    if earlier.reason != ask.reason:
        return Plan(
            ask,
            key,
            Verdict.FAIL,
            order,
            problem=f"an earlier run asked this refund with reason {earlier.reason or '(none)'}: give the same"
            " --reason to see its outcome, or a new --idempotency-key for another refund",
        )
    if earlier.status is RefundRequestStatus.SUCCEEDED:
        return Plan(ask, key, Verdict.DONE, order, amount=earlier.amount, earlier=earlier)
    if earlier.status is RefundRequestStatus.REFUSED:
        return Plan(
            ask,
            key,
            Verdict.FAIL,
            order,
            problem=f"Stripe refused this refund on an earlier run ({_refusal_text(earlier.error)}):"
            " to ask again, give a new --idempotency-key",
            earlier=earlier,
        )
    if earlier.status is RefundRequestStatus.PENDING:
        note = "an earlier run of this refund did not finish: this finishes it (Stripe is asked first whether it made it)"
        return Plan(ask, key, Verdict.REFUND, order, amount=earlier.amount, problem=note, earlier=earlier)
    return None  # abandoned: Stripe never made it, and PaymentService.refund tries it again


def _plan_from_order(ask: RefundAsk, key: str, order: PaymentStatusResult) -> Plan:
    def money(amount: int) -> str:
        return format_money(amount, order.currency)

    if order.status != "succeeded":
        return Plan(ask, key, Verdict.FAIL, order, problem=f"not paid ({order.status}): nothing to refund")
    left = order.amount_received - order.amount_refunded
    if left <= 0:
        # Asking for everything of an order that is all refunded is already done; asking for an amount is not.
        verdict = Verdict.SKIP if ask.amount is None else Verdict.FAIL
        problem = f"already fully refunded ({money(order.amount_refunded)}): nothing left to refund"
        return Plan(ask, key, verdict, order, problem=problem)
    if ask.amount is not None and ask.amount > left:
        problem = f"amount too large: {money(ask.amount)} asked, {money(left)} left to refund"
        return Plan(ask, key, Verdict.FAIL, order, problem=problem)
    return Plan(ask, key, Verdict.REFUND, order, amount=ask.amount if ask.amount is not None else left)


async def make_refund(session: Session, plan: Plan) -> RefundResult:
    """The refund, through the same code path and idempotency as the tRPC procedure `stripe.refund`."""
    ask = plan.ask
    return await session.payments.refund(
        ask.order_id, ask.amount, session.actor, reason=ask.reason, idempotency_key=plan.key
    )


def failure_text(error: Exception) -> str:
    """One line: what went wrong and what to do."""
    again = "run the same command again (it will not refund twice)"
    if isinstance(error, StripeCallError):
        if error.kind in _STRIPE_REFUSALS:
            code = f" ({error.code})" if error.code else ""
            return (
                f"Stripe refused the refund: {error.message}{code}; see the payment in the Stripe Dashboard"
            )
        if error.kind is FailureKind.AUTHENTICATION:
            return "Stripe refused the gateway's key: run the command with the gateway's STRIPE_SECRET_KEY"
        if error.kind is FailureKind.RATE_LIMIT:
            return f"Stripe is rate limiting this account: wait a minute and {again}; in bulk, lower --rate"
        return (
            f"Stripe could not be reached or did not answer ({error.kind.value}): the refund may or may not"
            f" have been made; {again}"
        )
    if isinstance(error, StoreError):
        return f"the store failed ({error}): check DATABASE_URL and the disk, then {again}"
    if isinstance(error, TRPCError):
        issues = (error.data or {}).get("issues")
        message = (
            "; ".join(str(issue.get("message")) for issue in issues if isinstance(issue, dict))
            if isinstance(issues, list)
            else error.message
        )
        if error.code is ErrorCode.CONFLICT and "retry" in message:
            return f"{message} ({again} then)"
        return message
    return str(error)


def _is_systemic(error: Exception) -> bool:
    """A failure every next order would meet too: the bulk run stops rather than fail them all."""
    if isinstance(error, StoreError):
        return True
    return isinstance(error, StripeCallError) and error.kind not in _STRIPE_REFUSALS


def _refusal_text(error: str | None) -> str:
    """The message of a refusal PaymentService kept (JSON with a `message`), or the text as it is."""
    if not error:
        return "no reason given"
    with suppress(msgspec.DecodeError):
        kept = msgspec.json.decode(error)
        if isinstance(kept, dict) and isinstance(kept.get("message"), str):
            return str(kept["message"])
    return error


# -- terminal ----------------------------------------------------------------------------------------------------


def _out(text: str) -> None:
    with suppress(BrokenPipeError):
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


NOT_A_TERMINAL: Final = (
    "gateway refund: stdin is not a terminal, so nobody can confirm: add --yes to refund without asking"
    " (or --dry-run to only look)"
)


def confirm(question: str) -> bool:
    """Ask on the terminal (the question on stderr: stdout is the command's output). Only y or yes proceeds."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _declined(question: str) -> int | None:
    """None when the operator says yes; otherwise the exit code, once the refusal is said."""
    try:
        if confirm(question):
            return None
    except KeyboardInterrupt:
        _err("\ngateway refund: interrupted: nothing refunded")
        return EXIT_INTERRUPTED
    _err("gateway refund: aborted: nothing refunded")
    return EXIT_FAILED


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _aligned(fields: Sequence[tuple[str, str]]) -> list[str]:
    """`name:  value` lines, values aligned; a line without a name continues the one above."""
    width = max(len(name) for name, _ in fields) + 2
    return [f"{name + ':' if name else '':<{width}}{value}" for name, value in fields]


# -- one order ---------------------------------------------------------------------------------------------------


def run_single(args: argparse.Namespace, settings: Settings, actor: Actor) -> int:
    ask = RefundAsk(args.order_id, args.amount, args.reason)
    key = idempotency_key(ask.order_id, ask.amount, args.idempotency_key or "")
    if not (args.yes or args.dry_run or _stdin_is_tty()):
        _err(NOT_A_TERMINAL)
        return EXIT_USAGE
    try:
        plan, refunds = asyncio.run(_preview_one(settings, actor, ask, key))
    except _FAILURES as error:
        return _single_failure(ask, failure_text(error))
    except KeyboardInterrupt:
        _err("gateway refund: interrupted: nothing refunded")
        return EXIT_INTERRUPTED
    _out("\n".join(_aligned(_order_fields(plan, refunds))))
    if plan.verdict in (Verdict.FAIL, Verdict.SKIP):
        return _single_failure(ask, plan.problem)
    if args.dry_run:
        _out("dry run: nothing refunded")
        return EXIT_OK
    if plan.verdict is Verdict.REFUND and not args.yes:
        assert plan.amount is not None
        declined = _declined(f"Refund {format_money(plan.amount, plan.currency)} of order {ask.order_id}?")
        if declined is not None:
            return declined
    try:
        result = asyncio.run(_refund_one(settings, actor, plan))
    except _FAILURES as error:
        return _single_failure(ask, failure_text(error))
    except KeyboardInterrupt:
        _err(
            f"gateway refund: order {ask.order_id}: interrupted while refunding: the refund may or may not have"
            " been made; run the same command again to find out (it will not refund twice)"
        )
        return EXIT_INTERRUPTED
    _out(_result_text(plan, result))
    return EXIT_OK


async def _preview_one(
    settings: Settings, actor: Actor, ask: RefundAsk, key: str
) -> tuple[Plan, list[Refund]]:
    async with open_session(settings, actor) as session:
        plan = await plan_refund(session, ask, key)
        refunds = await session.store.list_refunds(ask.order_id) if plan.order is not None else []
        return plan, refunds


async def _refund_one(settings: Settings, actor: Actor, plan: Plan) -> RefundResult:
    async with open_session(settings, actor) as session:
        return await make_refund(session, plan)


def _single_failure(ask: RefundAsk, problem: str) -> int:
    _err(f"gateway refund: order {ask.order_id}: {problem}")
    return EXIT_FAILED


def _order_fields(plan: Plan, refunds: Sequence[Refund]) -> list[tuple[str, str]]:
    """The order as the operator must see it before saying yes."""
    fields = [("order", plan.ask.order_id)]
    order = plan.order
    if order is not None:
        money = order.currency
        fields += [
            ("status", order.status),
            ("amount", format_money(order.amount, money)),
            ("paid", format_money(order.amount_received, money)),
            (
                "refunded",
                f"{format_money(order.amount_refunded, money)} ({_count(len(refunds), 'refund')} recorded)",
            ),
        ]
        fields += [
            (
                "",
                f"{r.id} {format_money(r.amount, r.currency)} {r.status}, {r.created_at} by {r.requested_by}",
            )
            for r in refunds
        ]
        left = max(0, order.amount_received - order.amount_refunded)
        fields.append(("left", format_money(left, money)))
    fields.append(("this refund", _what_this_does(plan)))
    if plan.ask.reason:
        fields.append(("reason", plan.ask.reason))
    fields.append(("key", plan.key))
    return fields


def _what_this_does(plan: Plan) -> str:
    if plan.verdict is Verdict.REFUND:
        assert plan.amount is not None
        everything = " (everything left)" if plan.ask.amount is None else ""
        note = f"; {plan.problem}" if plan.problem else ""
        return f"{format_money(plan.amount, plan.currency)}{everything}{note}"
    if plan.verdict is Verdict.DONE:
        assert plan.earlier is not None
        assert plan.amount is not None
        earlier = plan.earlier
        return (
            f"nothing new: an earlier run made this refund ({earlier.refund_id},"
            f" {format_money(plan.amount, plan.currency)}, {earlier.requested_by}, {earlier.updated_at})"
        )
    return f"nothing: {plan.problem}"


def _result_text(plan: Plan, result: RefundResult) -> str:
    money = result.currency
    paid = result.amount_refunded + result.amount_remaining
    totals = (
        f"order {result.order_id}: {format_money(result.amount_refunded, money)} refunded of"
        f" {format_money(paid, money)} paid, {format_money(result.amount_remaining, money)} left"
    )
    refunded = format_money(result.amount, money)
    if plan.verdict is Verdict.DONE:
        return (
            f"nothing refunded now: refund {result.refund_id} ({refunded}) was made by an earlier run of this"
            f" command; to refund {refunded} again, add --idempotency-key with a new value\n{totals}"
        )
    if plan.amount is not None and result.amount != plan.amount:
        # Stripe's charge had more refunded than the store knew (a Dashboard refund whose webhook is late).
        totals += f" (Stripe had less left than shown above: {refunded} refunded, not {format_money(plan.amount, money)})"
    return f"refunded {refunded}: refund {result.refund_id} ({result.status})\n{totals}"


# -- a file of orders: reading it --------------------------------------------------------------------------------


def read_orders_file(path: Path, default_reason: str | None = None) -> list[RefundAsk]:
    """Every line of `path` (header `order_id[,amount][,reason]`), checked whole before anything is done:
    FileRefused names every malformed line and every order on more than one line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            asks, problems = _parse_orders(file, default_reason)
    except FileNotFoundError:
        raise FileRefused(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise FileRefused(f"{path}: not UTF-8 text (save it as CSV UTF-8)") from None
    except OSError as error:
        raise FileRefused(f"{path}: {error.strerror}") from None
    if problems:
        shown = [f"  {problem}" for problem in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        raise FileRefused(f"{path}: refused, nothing done:\n" + "\n".join(shown))
    if not asks:
        raise FileRefused(
            f"{path}: no orders in it (a header order_id[,amount][,reason], then one order a line)"
        )
    return asks


def _parse_orders(file: TextIO, default_reason: str | None) -> tuple[list[RefundAsk], list[str]]:
    """The file's refunds, and `line N: what is wrong` for each line that is not one."""
    reader = csv.reader(file)
    asks: list[RefundAsk] = []
    problems: list[str] = []
    lines_of: dict[str, list[int]] = {}
    """Every line naming each order, malformed or not: a duplicate is reported with the rest."""
    try:
        header = next(reader, None)
        if header is None:
            return [], ["the file is empty: it needs a header order_id[,amount][,reason]"]
        columns = [name.strip().lower() for name in header]
        problem = _header_problem(columns)
        if problem:
            return [], [f"line 1: {problem}"]
        order_column = columns.index("order_id")
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (spreadsheets end files with them)
            parsed = _parse_line(columns, cells, reader.line_num, default_reason)
            if isinstance(parsed, RefundAsk):
                asks.append(parsed)
            else:
                problems.append(f"line {reader.line_num}: {parsed}")
            named = cells[order_column].strip() if order_column < len(cells) else ""
            if named:
                lines_of.setdefault(named, []).append(reader.line_num)
    except csv.Error as error:
        problems.append(f"line {reader.line_num}: not CSV ({error})")
    return asks, problems + _duplicates(lines_of)


def _header_problem(columns: Sequence[str]) -> str:
    unknown = [name for name in columns if name not in FILE_COLUMNS]
    if unknown:
        # A misspelt `amount` column must not turn every line into a total refund.
        return f"unknown column {unknown[0]!r}: the header is order_id[,amount][,reason]"
    if "order_id" not in columns:
        return "no order_id column: the header is order_id[,amount][,reason]"
    if len(set(columns)) != len(columns):
        return "a column is named twice"
    return ""


def _parse_line(
    columns: Sequence[str], cells: Sequence[str], line: int, default_reason: str | None
) -> RefundAsk | str:
    """The line's refund, or what is wrong with it."""
    if len(cells) != len(columns):
        return f"{len(cells)} fields, the header has {len(columns)}"
    values = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
    order_id = values["order_id"]
    problem = _order_id_problem(order_id)
    if problem:
        return problem
    text = values.get("amount", "")
    amount = _amount_value(text) if text else None
    if text and amount is None:
        return (
            f"amount {text!r} is not a whole number of minor units from 1 to {MAX_AMOUNT}"
            " (write 1000 for 10.00 EUR; leave it empty to refund everything)"
        )
    reason = values.get("reason", "") or default_reason
    if reason is not None and reason not in REASONS:
        return f"reason {reason!r} is not one of {', '.join(REASONS)} (or empty)"
    return RefundAsk(order_id, amount, reason, line)


def _order_id_problem(order_id: str) -> str:
    if not order_id:
        return "no order_id"
    if len(order_id) > MAX_ORDER_ID or not order_id.isprintable():
        return f"the order id is not 1-{MAX_ORDER_ID} printable characters"
    return ""


def _amount_value(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    amount = int(text)
    return amount if 1 <= amount <= MAX_AMOUNT else None


def _duplicates(lines_of: dict[str, list[int]]) -> list[str]:
    return [
        f"order {order_id!r} is on lines {', '.join(map(str, lines))}: one line per order (add the amounts up)"
        for order_id, lines in lines_of.items()
        if len(lines) > 1
    ]


# -- a file of orders: the report --------------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    REFUNDED = "refunded"
    SKIPPED = "skipped"
    FAILED = "failed"
    DRY_RUN = "dry-run"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One order's outcome. In a dry run's row, `amount_refunded` is what would be refunded and `error` says why
    nothing would be."""

    order_id: str
    requested_amount: int | None
    """None: everything left."""
    outcome: Outcome
    refund_id: str = ""
    amount_refunded: int | None = None
    currency: str = ""
    error: str = ""
    at: str = field(default_factory=now_iso)

    def cells(self) -> list[str]:
        return [
            self.order_id,
            _cell(self.requested_amount),
            self.outcome.value,
            self.refund_id,
            _cell(self.amount_refunded),
            self.currency,
            self.error,
            self.at,
        ]

    @classmethod
    def parse(cls, record: dict[str, str]) -> ReportRow:
        """Raises ValueError for what this command never writes."""
        return cls(
            order_id=record["order_id"],
            requested_amount=int(record["requested_amount"]) if record["requested_amount"] else None,
            outcome=Outcome(record["outcome"]),
            refund_id=record["refund_id"],
            amount_refunded=int(record["amount_refunded"]) if record["amount_refunded"] else None,
            currency=record["currency"],
            error=record["error"],
            at=record["at"],
        )


def _cell(amount: int | None) -> str:
    return "" if amount is None else str(amount)


def default_report_path(orders_file: Path) -> Path:
    return orders_file.with_name(orders_file.name + ".report.csv")


def read_report(path: Path) -> dict[str, ReportRow]:
    """Each order's latest row (rows are appended as orders end, so the last one counts); none without a file."""
    rows: dict[str, ReportRow] = {}
    try:
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file)
            if tuple(reader.fieldnames or ()) != REPORT_FIELDS:
                raise FileRefused(
                    f"{path}: not a report of this command (its header is {','.join(REPORT_FIELDS)}):"
                    " move it away or name another with --report"
                )
            for record in reader:
                try:
                    row = ReportRow.parse(record)
                except (ValueError, TypeError):  # a short row has None values
                    raise FileRefused(f"{path}: line {reader.line_num} is not a report row") from None
                rows[row.order_id] = row
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FileRefused(f"{path}: cannot read it as a report ({error})") from None
    return rows


class ReportWriter:
    """The report as the run goes: each order's row appended and synced to disk as soon as the order ends (so a
    killed run leaves a usable report), and the whole file rewritten — one row per order, in the orders file's
    order — when the run starts and ends, through a temporary file renamed over it."""

    def __init__(self, path: Path, previous: dict[str, ReportRow], order: Sequence[str]) -> None:
        self.path = path
        self._rows = dict(previous)
        self._order = list(order)
        self._rewrite()
        self._file: TextIO | None = path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)

    def add(self, row: ReportRow) -> None:
        assert self._file is not None, "the report is closed"
        self._rows[row.order_id] = row
        self._writer.writerow(row.cells())
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._rewrite()

    def _rewrite(self) -> None:
        listed = set(self._order)
        rows = [self._rows[order_id] for order_id in self._order if order_id in self._rows]
        rows += [
            row for order_id, row in self._rows.items() if order_id not in listed
        ]  # another file's orders
        descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(REPORT_FIELDS)
                writer.writerows(row.cells() for row in rows)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise


# -- a file of orders: pace, progress, Ctrl-C --------------------------------------------------------------------


class RateLimiter:
    """At most `rate` refunds a second: each starts at least `1 / rate` s after the previous one started."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next: float | None = None

    async def wait(self) -> None:
        if self._next is not None:
            await self.sleep(max(0.0, self._next - time.monotonic()))
        self._next = time.monotonic() + self._interval

    @staticmethod
    async def sleep(seconds: float) -> None:
        """Where a bulk run waits between two refunds, and so where a Ctrl-C usually finds it."""
        await asyncio.sleep(seconds)


class StopRequest:
    """Ctrl-C during a bulk run: the first asks to stop after the current order; the next one, back to Python's
    own handler, stops at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        # Outside the main thread, or without Unix signals, Ctrl-C stays a KeyboardInterrupt: it stops at once.
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self._interrupted)
            self._loop = loop

    def uninstall(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.remove_signal_handler(signal.SIGINT)  # restores Python's handler for SIGINT

    def _interrupted(self) -> None:
        self.requested = True
        self.uninstall()
        _err("\ngateway refund: stopping after the current order (Ctrl-C again to stop at once)")


@dataclass
class Progress:
    """A one-line bar on stderr when it is a terminal, cleared around each line printed on stdout."""

    total: int
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    shown: bool = False

    def advance(self, label: str) -> None:
        self.done += 1
        self.counts[label] = self.counts.get(label, 0) + 1

    def show(self) -> None:
        if not (sys.stderr.isatty() and self.total):
            return
        width = 30
        filled = width * self.done // self.total
        tally = "  ".join(f"{label} {count}" for label, count in self.counts.items())
        sys.stderr.write(
            f"\r[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}  {tally}\x1b[K"
        )
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False

    def print(self, text: str) -> None:
        self.clear()
        _out(text)
        self.show()


# -- a file of orders: the run -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tally:
    """One order in the summary: its outcome (`would …` in a dry run), its currency, what was refunded."""

    label: str
    currency: str
    amount: int | None


_LABELS: Final = ("refunded", "would refund", "skipped", "would skip", "failed", "would fail")
"""The summary's order."""


@dataclass
class BulkRun:
    """One run over a file: what it asks, what the report already says, and what this run did."""

    orders_file: Path
    report_path: Path
    asks: list[RefundAsk]
    keys: dict[str, str]
    previous: dict[str, ReportRow]
    dry_run: bool
    tallies: list[Tally] = field(default_factory=list)
    stop: StopRequest = field(default_factory=StopRequest)
    halted: str = ""
    """Why the run stopped before the end (the store or Stripe unavailable), when it did."""

    previewed: dict[str, Plan] = field(default_factory=dict)
    """What the preview found for each order, which the operator confirmed: the run refunds nothing else."""

    @property
    def todo(self) -> list[RefundAsk]:
        # Every line, even one the report says is refunded: that row may be for another amount or key. A line
        # refunded before under the same key is found by its key in the store (no Stripe call) and not redone.
        return list(self.asks)


def run_bulk(args: argparse.Namespace, settings: Settings, actor: Actor) -> int:
    orders_file: Path = args.from_file
    report_path: Path = args.report or default_report_path(orders_file)
    try:
        asks = read_orders_file(orders_file, args.reason)
        previous = read_report(report_path)
    except FileRefused as error:
        _err(f"gateway refund: {error}")
        return EXIT_USAGE
    if not (args.yes or args.dry_run or _stdin_is_tty()):
        _err(NOT_A_TERMINAL)
        return EXIT_USAGE
    salt = args.idempotency_key or ""
    keys = {ask.order_id: idempotency_key(ask.order_id, ask.amount, salt) for ask in asks}
    bulk = BulkRun(orders_file, report_path, asks, keys, previous, args.dry_run)
    try:
        plans = asyncio.run(_plan_all(settings, actor, bulk))
    except _FAILURES as error:
        _err(f"gateway refund: {failure_text(error)}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("gateway refund: interrupted before any refund: nothing done")
        return EXIT_INTERRUPTED
    bulk.previewed = {plan.ask.order_id: plan for plan in plans}
    _out(_bulk_preview(bulk, plans))
    to_refund = [plan for plan in plans if plan.verdict is Verdict.REFUND]
    if to_refund and not (args.yes or args.dry_run):
        declined = _declined(
            f"Refund {_count(len(to_refund), 'order')} ({_totals(to_refund)}) listed in {orders_file}?"
        )
        if declined is not None:
            return declined
    return _run_file(args, settings, actor, bulk)


async def _plan_all(settings: Settings, actor: Actor, bulk: BulkRun) -> list[Plan]:
    todo = bulk.todo
    if not todo:
        return []
    async with open_session(settings, actor) as session:
        return [await plan_refund(session, ask, bulk.keys[ask.order_id]) for ask in todo]


def _totals(plans: Sequence[Plan]) -> str:
    sums: dict[str, int] = {}
    for plan in plans:
        sums[plan.currency] = sums.get(plan.currency, 0) + (plan.amount or 0)
    return ", ".join(format_money(amount, currency) for currency, amount in sorted(sums.items()))


def _bulk_preview(bulk: BulkRun, plans: Sequence[Plan]) -> str:
    """Before the one confirmation: counts and totals, and each line that will not be refunded, and why."""
    by_verdict: dict[Verdict, list[Plan]] = {verdict: [] for verdict in Verdict}
    for plan in plans:
        by_verdict[plan.verdict].append(plan)
    lines = [f"{bulk.orders_file}: {len(bulk.asks)} orders"]
    if by_verdict[Verdict.REFUND]:
        lines.append(f"  {len(by_verdict[Verdict.REFUND])} to refund: {_totals(by_verdict[Verdict.REFUND])}")
    if by_verdict[Verdict.DONE]:
        lines.append(
            f"  {len(by_verdict[Verdict.DONE])} refunded by an earlier run under the same key:"
            " recorded as refunded, not refunded again"
        )
    for verdict, title in ((Verdict.SKIP, "nothing to do"), (Verdict.FAIL, "cannot be refunded")):
        if by_verdict[verdict]:
            lines.append(f"  {len(by_verdict[verdict])} {title}:")
            lines += [
                f"    line {plan.ask.line}  {plan.ask.order_id}: {plan.problem}"
                for plan in by_verdict[verdict]
            ]
    return "\n".join(lines)


def _run_file(args: argparse.Namespace, settings: Settings, actor: Actor, bulk: BulkRun) -> int:
    try:
        report = ReportWriter(bulk.report_path, bulk.previous, [ask.order_id for ask in bulk.asks])
    except OSError as error:
        _err(f"gateway refund: cannot write the report {bulk.report_path} ({error}): nothing refunded")
        return EXIT_FAILED
    progress = Progress(len(bulk.asks))
    stopped_at_once = False
    try:
        asyncio.run(
            _refund_all(settings, actor, bulk, report, progress, RateLimiter(args.rate or DEFAULT_RATE))
        )
    except KeyboardInterrupt:  # the second Ctrl-C
        stopped_at_once = True
    finally:
        report.close()
        progress.clear()
    if stopped_at_once:
        _err(
            "gateway refund: stopped at once: the order under way may or may not be refunded (its key tells)"
        )
    _out(format_summary(bulk.tallies))
    _out(f"report: {bulk.report_path}")
    return _bulk_exit(args, bulk, interrupted=stopped_at_once or bulk.stop.requested)


def _bulk_exit(args: argparse.Namespace, bulk: BulkRun, *, interrupted: bool) -> int:
    resume = _resume_command(args)
    if interrupted:
        _err(f"gateway refund: interrupted; to resume (refunded orders are skipped): {resume}")
        return EXIT_INTERRUPTED
    if bulk.halted:
        _err(f"gateway refund: stopped: {bulk.halted}; to resume: {resume}")
        return EXIT_FAILED
    failed = sum(1 for tally in bulk.tallies if tally.label == Outcome.FAILED.value)
    if failed:
        _err(
            f"gateway refund: {_count(failed, 'order')} not refunded (the report says why):"
            f" fix what it says, then run the same command again: {resume}"
        )
        return EXIT_FAILED
    return EXIT_OK


async def _refund_all(
    settings: Settings,
    actor: Actor,
    bulk: BulkRun,
    report: ReportWriter,
    progress: Progress,
    limiter: RateLimiter,
) -> None:
    bulk.stop.install()
    try:
        async with open_session(settings, actor) as session:
            progress.show()
            for ask in bulk.todo:
                if bulk.stop.requested or bulk.halted:
                    return
                ended = await _one_order(session, bulk, limiter, ask)
                if ended is None:  # stopped while waiting for its turn: not started
                    return
                row, label = ended
                report.add(row)
                bulk.tallies.append(Tally(label, row.currency, row.amount_refunded))
                progress.advance(label)
                progress.print(_row_text(ask, row, label))
    finally:
        bulk.stop.uninstall()


async def _one_order(
    session: Session, bulk: BulkRun, limiter: RateLimiter, ask: RefundAsk
) -> tuple[ReportRow, str] | None:
    """Plan the order again (it may have changed since the preview), then refund it at the limiter's pace: its
    report row and its summary label, or None when stopped before it started."""
    plan: Plan | None = None
    try:
        plan = await plan_refund(session, ask, bulk.keys[ask.order_id])
        if bulk.dry_run:
            return _dry_run_row(plan)
        changed = _changed_since_preview(bulk.previewed.get(ask.order_id), plan)
        if changed is not None:
            return _row(ask, Outcome.FAILED, currency=plan.currency, error=changed), Outcome.FAILED.value
        if plan.verdict in (Verdict.SKIP, Verdict.FAIL):
            outcome = Outcome.SKIPPED if plan.verdict is Verdict.SKIP else Outcome.FAILED
            return _row(ask, outcome, currency=plan.currency, error=plan.problem), outcome.value
        if plan.verdict is Verdict.REFUND:
            try:
                await limiter.wait()
            except KeyboardInterrupt:  # raised where the run waits: nothing of this order started
                bulk.stop.requested = True
            if bulk.stop.requested:
                return None
        result = await make_refund(session, plan)
    except _FAILURES as error:
        if _is_systemic(error):
            bulk.halted = failure_text(error)
        currency = plan.currency if plan is not None else ""
        return _row(ask, Outcome.FAILED, currency=currency, error=failure_text(error)), Outcome.FAILED.value
    row = _row(
        ask, Outcome.REFUNDED, refund_id=result.refund_id, amount=result.amount, currency=result.currency
    )
    return row, Outcome.REFUNDED.value


def _dry_run_row(plan: Plan) -> tuple[ReportRow, str]:
    if plan.verdict is Verdict.REFUND:
        return _row(plan.ask, Outcome.DRY_RUN, amount=plan.amount, currency=plan.currency), "would refund"
    if plan.verdict is Verdict.DONE:
        refund_id = plan.earlier.refund_id if plan.earlier is not None else None
        note = "refunded by an earlier run under the same key"
        row = _row(plan.ask, Outcome.DRY_RUN, refund_id=refund_id or "", currency=plan.currency, error=note)
        return row, "would skip"
    label = "would skip" if plan.verdict is Verdict.SKIP else "would fail"
    return _row(plan.ask, Outcome.DRY_RUN, currency=plan.currency, error=plan.problem), label


def _changed_since_preview(previewed: Plan | None, plan: Plan) -> str | None:
    """Why an order that is to be refunded now may not be: it was not confirmed so (it was not refundable, or
    for another amount, when the operator said yes)."""
    if plan.verdict is not Verdict.REFUND:
        return None
    if previewed is None or previewed.verdict is not Verdict.REFUND or previewed.amount != plan.amount:
        return "changed since the preview (not confirmed for this refund): run the command again to review it"
    return None


def _row(
    ask: RefundAsk,
    outcome: Outcome,
    *,
    refund_id: str = "",
    amount: int | None = None,
    currency: str = "",
    error: str = "",
) -> ReportRow:
    return ReportRow(ask.order_id, ask.amount, outcome, refund_id, amount, currency, error)


def _row_text(ask: RefundAsk, row: ReportRow, label: str) -> str:
    """`line 3  order_123: refunded 10.00 EUR (re_…)`, or `…: failed: why`."""
    text = f"line {ask.line}  {ask.order_id}: {label}"
    if row.amount_refunded is not None:
        text += f" {format_money(row.amount_refunded, row.currency)}"
    if row.refund_id:
        text += f" ({row.refund_id})"
    return f"{text}: {row.error}" if row.error else text


def format_summary(tallies: Sequence[Tally]) -> str:
    """Orders and amounts per outcome and currency, as an aligned table (amounts only where money moved, or
    would in a dry run)."""
    groups: dict[tuple[str, str], tuple[int, int | None]] = {}
    for tally in tallies:
        # Per currency where there is money to add up; one line per outcome otherwise.
        group = (tally.label, tally.currency if tally.amount is not None else "")
        count, amount = groups.get(group, (0, None))
        if tally.amount is not None:
            amount = (amount or 0) + tally.amount
        groups[group] = (count + 1, amount)
    rows = [("OUTCOME", "ORDERS", "AMOUNT")]
    for (label, currency), (count, amount) in sorted(
        groups.items(), key=lambda item: (_LABELS.index(item[0][0]), item[0][1])
    ):
        rows.append((label, str(count), "-" if amount is None else format_money(amount, currency)))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        f"{label:<{widths[0]}}  {count:>{widths[1]}}  {amount:>{widths[2]}}" for label, count, amount in rows
    )


def _resume_command(args: argparse.Namespace) -> str:
    """The same command again, which skips what is done (without --yes: the operator decides again)."""
    words = ["gateway", "refund", "--from-file", str(args.from_file)]
    for option, value in (
        ("--report", args.report),
        ("--rate", args.rate),
        ("--reason", args.reason),
        ("--idempotency-key", args.idempotency_key),
    ):
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


# -- the command line --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`gateway refund …`, with the settings the server runs with."""
    problem = _usage_problem(args)
    if problem:
        _err(f"gateway refund: {problem}")
        return EXIT_USAGE
    if settings.uses_emulator:  # no key outside production: the emulator `gateway serve` started
        settings = read_emulator_state().configure(settings)
    request_id = f"refund_{time.time_ns() // 1_000_000}_{secrets.token_hex(4)}"
    actor = Actor(operator_name(), request_id, is_admin=True)
    if args.from_file is not None:
        return run_bulk(args, settings, actor)
    return run_single(args, settings, actor)


def _usage_problem(args: argparse.Namespace) -> str:
    if args.from_file is not None and args.amount is not None:
        return "--amount goes with --order-id (in a file, the amount column)"
    if args.order_id is not None and (args.rate is not None or args.report is not None):
        return "--rate and --report go with --from-file"
    return ""


def _order_id(text: str) -> str:
    problem = _order_id_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _amount(text: str) -> int:
    amount = _amount_value(text.strip())
    if amount is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number of minor units from 1 to {MAX_AMOUNT} (1000 for 10.00 EUR)"
        )
    return amount


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < rate <= 100:
        raise argparse.ArgumentTypeError(f"between 0 and 100 refunds a second, not {text}")
    return rate


def _key_salt(text: str) -> str:
    if not text or not text.isprintable() or len(text) > 200:
        raise argparse.ArgumentTypeError("1-200 printable characters")
    return text


_DESCRIPTION: Final = """\
Refund a paid order through the gateway (the same code path and idempotency as the tRPC procedure stripe.refund),
in the operator's name in the audit trail (operator:<login>). It shows the order first and asks before refunding.

  gateway refund --order-id order_123                 everything not refunded yet
  gateway refund --order-id order_123 --amount 1000   10.00 EUR (minor units)
  gateway refund --from-file orders.csv               each line: order_id[,amount][,reason]

Running the same command again never refunds twice: each refund's idempotency key comes from the order and the
amount (or "total"), so a re-run is answered with the refund already made. Another --idempotency-key value makes
a deliberate second refund of the same amount. A file's re-run refunds no line twice: each is found by its key."""

_EPILOG: Final = """\
exit codes: 0 done or nothing to do, 1 a refund failed or the confirmation was declined,
2 usage (options, no terminal without --yes, malformed file), 130 interrupted (Ctrl-C; a file run says how to
resume)."""


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "refund",
        help="refund an order (all, or --amount), or every order of a CSV file (--from-file)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # stdout is the command's output; the gateway's log lines, the question and the progress bar go to stderr.
    parser.set_defaults(run=run, logs_to_stderr=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--order-id", type=_order_id, metavar="ID", help="the order to refund (the app's id)")
    target.add_argument(
        "--from-file",
        type=Path,
        metavar="CSV",
        help="refund every order of a CSV file: header order_id[,amount][,reason], empty amount = everything",
    )
    parser.add_argument(
        "--amount",
        type=_amount,
        metavar="N",
        help="refund N in the currency's minor unit (1000 = 10.00 EUR); default: everything not refunded yet",
    )
    parser.add_argument(
        "--reason", choices=REASONS, help="Stripe's refund reason (in a file: for the lines without one)"
    )
    parser.add_argument(
        "--idempotency-key",
        type=_key_salt,
        metavar="KEY",
        help="part of each refund's idempotency key: a new KEY makes a new refund of the same amount; give the"
        " same KEY again to re-run that refund (default: none)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="show what would be refunded; refund nothing")
    parser.add_argument(
        "--rate",
        type=_rate,
        metavar="N",
        help=f"with --from-file: at most N refunds a second (default {DEFAULT_RATE:g}; Stripe's limits)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="with --from-file: the report CSV, read to resume and written as orders end"
        " (default: <file>.report.csv)",
    )
