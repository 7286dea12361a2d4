"""`gateway refund`, one order and a file of orders, against the local Stripe emulator process and a real SQLite
store.

Orders are created through PaymentService, paid with `gateway.dev_pay` (as `gateway dev pay` does) and recorded
as paid the way the webhook would (`sync_order`: no gateway listens here). The command runs in-process through
`gateway.cli.main` with the environment and working directory of an operator's shell (monkeypatched), and as the
real console script where a real process matters: stdin that is no terminal, and a SIGINT in the middle of a file.
What a test checks at the end is what Stripe has (the emulator, through the Stripe SDK) and what the store says.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import stripe

from gateway import cli
from gateway.dev_pay import dev_pay
from gateway.logs import configure_logging
from gateway.ops import refunds
from gateway.payments import Actor, PaymentService, user_actor
from gateway.settings import Settings
from gateway.store import AuditEntry, Order, RefundRequest, open_store
from gateway.stripe_api import StripeApi
from schemas.stripe import CreatePaymentIntentInput
from tests.support.stripe_emulator import REPO_ROOT, StripeEmulator

GATEWAY = Path(sys.executable).parent / "gateway"
OPERATOR_LOGIN = "alice"
SUBPROCESS_DEADLINE = 60.0
APP_USER = Actor(user_actor("app-user"))
WEBHOOK = Actor("stripe")


# -- the shop: orders, Stripe, the store -------------------------------------------------------------------------


@dataclass
class Shop:
    """The gateway's world for one test: the emulator, a SQLite file, the settings and environment of both."""

    emulator: StripeEmulator
    settings: Settings
    home: Path
    """The operator's working directory (tmp_path), where files and reports go."""

    def environment(self) -> dict[str, str]:
        return {
            "STRIPE_SECRET_KEY": self.emulator.secret_key,
            "STRIPE_PUBLISHABLE_KEY": self.emulator.publishable_key,
            "STRIPE_WEBHOOK_SECRET": self.emulator.webhook_secret,
            "STRIPE_API_BASE": self.emulator.api_base,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "DATABASE_URL": self.settings.database_url,
            "LOGNAME": OPERATOR_LOGIN,
        }

    def paid(self, order_id: str, amount: int = 2500, currency: str = "eur") -> None:
        """An order paid by card, and recorded as paid as Stripe's webhook would record it."""
        asyncio.run(self._create(order_id, amount, currency))
        assert asyncio.run(dev_pay(self.settings, order_id, "visa")) == "succeeded"
        asyncio.run(self._with_service(lambda service: service.sync_order(order_id, WEBHOOK)))

    def unpaid(self, order_id: str, amount: int = 2500) -> None:
        asyncio.run(self._create(order_id, amount, "eur"))

    async def _create(self, order_id: str, amount: int, currency: str) -> None:
        request = CreatePaymentIntentInput(order_id=order_id, amount=amount, currency=currency)
        await self._with_service(lambda service: service.create_payment_intent(request, APP_USER))

    async def _with_service(self, call: Callable[[PaymentService], Any]) -> Any:
        store = await open_store(self.settings.database_url)
        api = StripeApi(self.settings)
        try:
            return await call(PaymentService(store, api, self.settings))
        finally:
            await api.close()
            await store.close()

    def order(self, order_id: str) -> Order:
        order: Order | None = asyncio.run(self.read(lambda store: store.get_order(order_id)))
        assert order is not None
        return order

    def audit(self, order_id: str) -> list[AuditEntry]:
        entries: list[AuditEntry] = asyncio.run(self.read(lambda store: store.list_audit(order_id)))
        return entries

    def refund_request(self, order_id: str, amount: int | None) -> RefundRequest | None:
        """The refund request the command made for `order_id` and `amount`, found by the key it derives."""
        key = refunds.idempotency_key(order_id, amount)
        request: RefundRequest | None = asyncio.run(
            self.read(lambda store: store.get_refund_request(caller_key=key))
        )
        return request

    async def read(self, read: Callable[[Any], Any]) -> Any:
        store = await open_store(self.settings.database_url)
        try:
            return await read(store)
        finally:
            await store.close()

    def stripe_refunds(self, order_id: str) -> list[tuple[str, int]]:
        """The order's refunds at Stripe (id, amount), oldest first, from the emulator itself."""
        return [(refund.id, int(refund.amount)) for refund in self.stripe_refund_objects(order_id)]

    def stripe_refund_objects(self, order_id: str) -> list[stripe.Refund]:
        intent_id = self.order(order_id).payment_intent_id
        assert intent_id is not None

        async def listed(client: stripe.StripeClient) -> list[stripe.Refund]:
            page = await client.v1.refunds.list_async({"payment_intent": intent_id, "limit": 100})
            return list(reversed(page.data))

        found: list[stripe.Refund] = asyncio.run(self._at_stripe(listed))
        return found

    def refund_at_stripe_directly(self, order_id: str, amount: int) -> None:
        """A refund made in Stripe's Dashboard, whose webhook has not reached the gateway yet."""
        intent_id = self.order(order_id).payment_intent_id
        assert intent_id is not None

        async def refund(client: stripe.StripeClient) -> None:
            await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": amount})

        asyncio.run(self._at_stripe(refund))

    async def _at_stripe(self, call: Callable[[stripe.StripeClient], Any]) -> Any:
        http = stripe.AIOHTTPClient()
        client = stripe.StripeClient(
            self.emulator.secret_key, base_addresses={"api": self.emulator.api_base}, http_client=http
        )
        try:
            return await call(client)
        finally:
            await http.close_async()  # type: ignore[no-untyped-call]

    def orders_file(self, text: str, name: str = "orders.csv") -> Path:
        path = self.home / name
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def shop(fresh_stripe_emulator: StripeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """An operator's shell: the gateway's configuration in the environment (nothing else of it), in tmp_path."""
    database = tmp_path / "gateway.sqlite3"
    settings = Settings(
        stripe_secret_key=fresh_stripe_emulator.secret_key,
        stripe_publishable_key=fresh_stripe_emulator.publishable_key,
        stripe_webhook_secret=fresh_stripe_emulator.webhook_secret,
        stripe_api_base=fresh_stripe_emulator.api_base,
        stripe_max_network_retries=0,
        database_url=f"sqlite:///{database}",
    )
    shop = Shop(fresh_stripe_emulator, settings, tmp_path)
    for name in list(os.environ):
        if name.startswith(("STRIPE_", "GATEWAY_", "NODE_ENV", "DATABASE_URL", "JWT_", "QR_")):
            monkeypatch.delenv(name)
    for name, value in shop.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    asyncio.run(shop.read(lambda store: store.ping()))  # the database exists, as where the gateway runs
    return shop


# -- running the command -----------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """What the operator types, on stdin that is a terminal."""

    def isatty(self) -> bool:
        return True


class NoTerminal(io.StringIO):
    """stdin redirected (a script, a cron job): not a terminal."""

    def isatty(self) -> bool:
        return False


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


Gateway = Callable[..., Ran]


@pytest.fixture
def gateway(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """`gateway(*args, typed=…)` runs `gateway ARGS` in-process: `typed` is what the operator types at a
    terminal; without it stdin is not a terminal."""

    def run(*args: str, typed: str | None = None) -> Ran:
        stdin = Terminal(typed) if typed is not None else NoTerminal("")
        monkeypatch.setattr(sys, "stdin", stdin)
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    try:
        yield run
    finally:
        configure_logging("DEBUG")  # the session's sink again: the command pointed loguru at captured stderr


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def outcomes(path: Path) -> dict[str, str]:
    return {row["order_id"]: row["outcome"] for row in report_rows(path)}


PREVIEW_LINE = re.compile(r"(?P<name>[a-z][a-z ]*):\s+(?P<value>.*)")


def preview(out: str) -> dict[str, str]:
    """The order as the command showed it before acting: `name: value` lines."""
    return {m["name"]: m["value"] for line in out.splitlines() if (m := PREVIEW_LINE.fullmatch(line))}


SUMMARY_LINE = re.compile(
    r"(?P<label>[a-z][a-z ]*?)\s+(?P<orders>\d+)\s+(?P<amount>-|\S+ (?P<currency>[A-Z]{3}))"
)


def summary(out: str) -> dict[str, tuple[int, str]]:
    """The summary table: `label` or `label CUR` (per currency, where money moved) → (orders, amount)."""
    table: dict[str, tuple[int, str]] = {}
    for line in out[out.index("OUTCOME") :].splitlines()[1:]:
        match = SUMMARY_LINE.fullmatch(line.strip())
        if match is None:
            break
        key = match["label"] + (f" {match['currency']}" if match["currency"] else "")
        table[key] = (int(match["orders"]), match["amount"])
    return table


# -- one order ---------------------------------------------------------------------------------------------------


def test_a_total_refund_refunds_everything_left_and_says_what_remains(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-1", 2500)

    ran = gateway("refund", "--order-id", "order-1", "--yes")

    assert ran.code == 0, ran.err
    [(refund_id, amount)] = shop.stripe_refunds("order-1")
    assert amount == 2500
    assert shop.order("order-1").amount_refunded == 2500
    # Before acting, the order as it was; then the refund and the order's new totals.
    assert preview(ran.out)["status"] == "succeeded"
    assert preview(ran.out)["paid"] == "25.00 EUR"
    assert preview(ran.out)["left"] == "25.00 EUR"
    assert preview(ran.out)["this refund"] == "25.00 EUR (everything left)"
    assert f"refunded 25.00 EUR: refund {refund_id}" in ran.out
    assert "order order-1: 25.00 EUR refunded of 25.00 EUR paid, 0.00 EUR left" in ran.out


def test_a_partial_refund_then_the_rest(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-2", 2500)

    partial = gateway("refund", "--order-id", "order-2", "--amount", "1000", "--yes")
    rest = gateway("refund", "--order-id", "order-2", "--yes")

    assert (partial.code, rest.code) == (0, 0), partial.err + rest.err
    assert [amount for _, amount in shop.stripe_refunds("order-2")] == [1000, 1500]
    assert "order order-2: 10.00 EUR refunded of 25.00 EUR paid, 15.00 EUR left" in partial.out
    assert preview(rest.out)["refunded"] == "10.00 EUR (1 refund recorded)"
    assert preview(rest.out)["this refund"] == "15.00 EUR (everything left)"
    assert "order order-2: 25.00 EUR refunded of 25.00 EUR paid, 0.00 EUR left" in rest.out
    assert shop.order("order-2").amount_refunded == 2500


def test_a_dry_run_shows_the_refund_and_changes_nothing(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-3", 2500)
    audit_before = shop.audit("order-3")

    ran = gateway("refund", "--order-id", "order-3", "--amount", "700", "--dry-run")

    assert ran.code == 0, ran.err
    assert preview(ran.out)["this refund"] == "7.00 EUR"
    assert "dry run: nothing refunded" in ran.out
    assert shop.stripe_refunds("order-3") == []
    assert shop.order("order-3").amount_refunded == 0
    assert shop.audit("order-3") == audit_before
    assert shop.refund_request("order-3", 700) is None


def test_answering_no_at_the_terminal_changes_nothing(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-4", 1000)
    audit_before = shop.audit("order-4")

    ran = gateway("refund", "--order-id", "order-4", typed="n\n")

    assert ran.code == 1
    assert "Refund 10.00 EUR of order order-4? [y/N]" in ran.err
    assert "aborted: nothing refunded" in ran.err
    assert shop.stripe_refunds("order-4") == []
    assert shop.audit("order-4") == audit_before


def test_answering_yes_at_the_terminal_refunds(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-5", 1000)

    ran = gateway("refund", "--order-id", "order-5", "--amount", "400", typed="yes\n")

    assert ran.code == 0, ran.err
    assert "Refund 4.00 EUR of order order-5? [y/N]" in ran.err
    assert [amount for _, amount in shop.stripe_refunds("order-5")] == [400]


def test_without_a_terminal_or_yes_it_refuses_before_anything(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-6", 1000)
    audit_before = shop.audit("order-6")

    ran = gateway("refund", "--order-id", "order-6")

    assert ran.code == 2
    assert "stdin is not a terminal" in ran.err
    assert "--yes" in ran.err
    assert ran.out == ""
    assert shop.stripe_refunds("order-6") == []
    assert shop.audit("order-6") == audit_before


def test_the_audit_trail_and_stripe_name_the_operator(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-7", 1000)

    ran = gateway("refund", "--order-id", "order-7", "--reason", "requested_by_customer", "--yes")

    assert ran.code == 0, ran.err
    entries = {entry.action: entry for entry in shop.audit("order-7")}
    for action in ("refund.requested", "refund.created"):
        assert entries[action].actor == f"operator:{OPERATOR_LOGIN}"
        assert (entries[action].request_id or "").startswith("refund_")
    [refund] = shop.stripe_refund_objects("order-7")
    assert refund.metadata is not None
    assert refund.metadata["requested_by"] == f"operator:{OPERATOR_LOGIN}"
    assert refund.reason == "requested_by_customer"
    request = shop.refund_request("order-7", None)
    assert request is not None
    assert (request.requested_by, request.reason) == (f"operator:{OPERATOR_LOGIN}", "requested_by_customer")


def test_the_same_command_twice_refunds_once(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-8", 2500)

    first = gateway("refund", "--order-id", "order-8", "--amount", "1000", "--yes")
    again = gateway("refund", "--order-id", "order-8", "--amount", "1000", "--yes")

    assert (first.code, again.code) == (0, 0), first.err + again.err
    [(refund_id, amount)] = shop.stripe_refunds("order-8")
    assert amount == 1000
    assert f"nothing refunded now: refund {refund_id} (10.00 EUR) was made by an earlier run" in again.out
    assert "--idempotency-key" in again.out
    assert shop.order("order-8").amount_refunded == 1000

    # A deliberate second refund of the same amount takes a new key.
    second = gateway(
        "refund", "--order-id", "order-8", "--amount", "1000", "--idempotency-key", "2nd", "--yes"
    )
    assert second.code == 0, second.err
    assert [amount for _, amount in shop.stripe_refunds("order-8")] == [1000, 1000]


def test_the_same_refund_with_another_reason_is_refused(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-9", 2500)
    assert gateway("refund", "--order-id", "order-9", "--amount", "500", "--yes").code == 0

    ran = gateway("refund", "--order-id", "order-9", "--amount", "500", "--reason", "fraudulent", "--yes")

    assert ran.code == 1
    assert "an earlier run asked this refund with reason (none)" in ran.err
    assert [amount for _, amount in shop.stripe_refunds("order-9")] == [500]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--order-id", "ghost"], "no order 'ghost' in the store"),
        (["--order-id", "unpaid"], "not paid (requires_payment_method): nothing to refund"),
        (["--order-id", "paid", "--amount", "2501"], "amount too large: 25.01 EUR asked, 25.00 EUR left"),
        (["--order-id", "refunded"], "already fully refunded (25.00 EUR)"),
    ],
)
def test_what_cannot_be_refunded_is_one_line_and_exit_1(
    shop: Shop, gateway: Gateway, args: list[str], expected: str
) -> None:
    shop.unpaid("unpaid")
    shop.paid("paid")
    shop.paid("refunded")
    # Refunded whole, by another command than the one tested (the same command again is answered, not refused).
    assert gateway("refund", "--order-id", "refunded", "--amount", "2500", "--yes").code == 0

    ran = gateway("refund", *args, "--yes")

    assert ran.code == 1
    [line] = [line for line in ran.err.splitlines() if line.startswith("gateway refund:")]
    assert expected in line
    assert [amount for _, amount in shop.stripe_refunds("paid")] == []


def test_stripe_has_the_last_word_on_what_is_left(shop: Shop, gateway: Gateway) -> None:
    """Refunds made in the Dashboard that the store has not heard of yet: a total refunds what Stripe says is
    left (and says so), and an amount above it is refused with Stripe's figure."""
    shop.paid("order-10", 2500)
    shop.paid("order-12", 2500)
    shop.refund_at_stripe_directly("order-10", 1000)
    shop.refund_at_stripe_directly("order-12", 1000)

    rest = gateway("refund", "--order-id", "order-10", "--yes")
    too_much = gateway("refund", "--order-id", "order-12", "--amount", "2000", "--yes")

    assert rest.code == 0, rest.err
    assert preview(rest.out)["this refund"] == "25.00 EUR (everything left)"  # as the store knew it
    assert "refunded 15.00 EUR" in rest.out
    assert "(Stripe had less left than shown above: 15.00 EUR refunded, not 25.00 EUR)" in rest.out
    assert [amount for _, amount in shop.stripe_refunds("order-10")] == [1000, 1500]
    assert too_much.code == 1
    assert "Amount 2000 exceeds what can still be refunded: 1500 EUR" in too_much.err
    assert [amount for _, amount in shop.stripe_refunds("order-12")] == [1000]


def test_stripe_unreachable_says_to_run_it_again(shop: Shop, gateway: Gateway) -> None:
    shop.paid("order-11", 2500)
    shop.emulator.stop()
    try:
        ran = gateway("refund", "--order-id", "order-11", "--yes")
    finally:
        shop.emulator.start()

    assert ran.code == 1
    assert "Stripe could not be reached or did not answer (connection)" in ran.err
    assert "run the same command again (it will not refund twice)" in ran.err
    assert shop.refund_request("order-11", None) is None  # Stripe was not reached: nothing was asked of it
    assert shop.order("order-11").amount_refunded == 0


def test_no_store_at_database_url_is_an_error_and_creates_none(
    shop: Shop, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = shop.home / "elsewhere" / "gateway.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")

    ran = gateway("refund", "--order-id", "order-1", "--yes")

    assert ran.code == 1
    assert f"the store failed (no database at {missing}" in ran.err
    assert not missing.exists()


# -- a file of orders --------------------------------------------------------------------------------------------


def test_a_file_refunds_each_order_and_reports_each_outcome(shop: Shop, gateway: Gateway) -> None:
    shop.paid("bulk-1", 2500)
    shop.paid("bulk-2", 3000)
    shop.paid("bulk-3", 1000, "usd")
    orders = shop.orders_file(
        "order_id,amount,reason\nbulk-1,,requested_by_customer\nbulk-2,1000,\nghost,,\nbulk-3,,duplicate\n"
    )

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 1  # one order could not be refunded
    assert [amount for _, amount in shop.stripe_refunds("bulk-1")] == [2500]
    assert [amount for _, amount in shop.stripe_refunds("bulk-2")] == [1000]
    assert [amount for _, amount in shop.stripe_refunds("bulk-3")] == [1000]
    report = orders.with_name("orders.csv.report.csv")
    rows = {row["order_id"]: row for row in report_rows(report)}
    assert list(rows) == ["bulk-1", "bulk-2", "ghost", "bulk-3"]
    assert {k: rows["bulk-2"][k] for k in ("requested_amount", "outcome", "amount_refunded", "currency")} == {
        "requested_amount": "1000",
        "outcome": "refunded",
        "amount_refunded": "1000",
        "currency": "eur",
    }
    assert rows["bulk-1"]["requested_amount"] == ""
    assert rows["bulk-1"]["refund_id"] == shop.stripe_refunds("bulk-1")[0][0]
    assert rows["ghost"]["outcome"] == "failed"
    assert "no order 'ghost'" in rows["ghost"]["error"]
    assert all(row["at"].endswith("Z") for row in rows.values())
    # The preview before acting, the summary after.
    assert "3 to refund: 35.00 EUR, 10.00 USD" in ran.out
    assert "line 4  ghost: no order 'ghost'" in ran.out
    table = summary(ran.out)
    assert table["refunded EUR"] == (2, "35.00 EUR")
    assert table["refunded USD"] == (1, "10.00 USD")
    assert table["failed"] == (1, "-")
    assert "1 order not refunded" in ran.err
    # Reasons reached Stripe through the service.
    request = shop.refund_request("bulk-3", None)
    assert request is not None
    assert request.reason == "duplicate"


def test_a_file_asks_once_showing_count_and_totals(shop: Shop, gateway: Gateway) -> None:
    shop.paid("ask-1", 2500)
    shop.paid("ask-2", 2500)
    orders = shop.orders_file("order_id,amount\nask-1,\nask-2,500\n")

    declined = gateway("refund", "--from-file", str(orders), typed="\n")

    assert declined.code == 1
    assert f"Refund 2 orders (30.00 EUR) listed in {orders}? [y/N]" in declined.err
    assert shop.stripe_refunds("ask-1") == shop.stripe_refunds("ask-2") == []
    assert not orders.with_name("orders.csv.report.csv").exists()

    accepted = gateway("refund", "--from-file", str(orders), typed="y\n")

    assert accepted.code == 0, accepted.err
    assert [amount for _, amount in shop.stripe_refunds("ask-2")] == [500]


def test_a_file_without_a_terminal_or_yes_is_refused(shop: Shop, gateway: Gateway) -> None:
    shop.paid("tty-1")
    orders = shop.orders_file("order_id\ntty-1\n")

    ran = gateway("refund", "--from-file", str(orders))

    assert ran.code == 2
    assert "stdin is not a terminal" in ran.err
    assert shop.stripe_refunds("tty-1") == []


def test_a_dry_run_of_a_file_reports_what_would_happen_and_refunds_nothing(
    shop: Shop, gateway: Gateway
) -> None:
    shop.paid("dry-1", 2500)
    shop.paid("dry-2", 2500)
    shop.unpaid("dry-3")
    orders = shop.orders_file("order_id,amount\ndry-1,\ndry-2,1000\ndry-3,\n")

    ran = gateway("refund", "--from-file", str(orders), "--dry-run")

    assert ran.code == 0, ran.err
    assert shop.stripe_refunds("dry-1") == shop.stripe_refunds("dry-2") == []
    assert shop.refund_request("dry-1", None) is None
    rows = {row["order_id"]: row for row in report_rows(orders.with_name("orders.csv.report.csv"))}
    assert {row["outcome"] for row in rows.values()} == {"dry-run"}
    assert (rows["dry-1"]["amount_refunded"], rows["dry-2"]["amount_refunded"]) == ("2500", "1000")
    assert "not paid" in rows["dry-3"]["error"]
    table = summary(ran.out)
    assert table["would refund EUR"] == (2, "35.00 EUR")
    assert table["would fail"] == (1, "-")

    # The real run afterwards refunds, and replaces the dry run's rows.
    real = gateway("refund", "--from-file", str(orders), "--yes")
    assert real.code == 1  # dry-3 is not paid
    assert outcomes(orders.with_name("orders.csv.report.csv")) == {
        "dry-1": "refunded",
        "dry-2": "refunded",
        "dry-3": "failed",
    }


def test_a_file_interrupted_then_resumed_refunds_each_order_once(
    shop: Shop, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(1, 5):
        shop.paid(f"resume-{number}", 1000 * number)
    orders = shop.orders_file("order_id\nresume-1\nresume-2\nresume-3\nresume-4\n")
    report = orders.with_name("orders.csv.report.csv")
    waits = 0

    async def ctrl_c_at_the_second_wait(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 2:  # after two refunds, while waiting for the third's turn
            raise KeyboardInterrupt

    monkeypatch.setattr(refunds.RateLimiter, "sleep", staticmethod(ctrl_c_at_the_second_wait))

    interrupted = gateway("refund", "--from-file", str(orders), "--yes")

    assert interrupted.code == 130
    assert outcomes(report) == {"resume-1": "refunded", "resume-2": "refunded"}
    assert f"to resume (refunded orders are skipped): gateway refund --from-file {orders}" in interrupted.err
    assert shop.stripe_refunds("resume-3") == []

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(refunds.RateLimiter, "sleep", staticmethod(no_wait))
    resumed = gateway("refund", "--from-file", str(orders), "--yes")

    assert resumed.code == 0, resumed.err
    # The two refunded before the interruption are found by their keys (no second refund), the others made.
    assert "2 refunded by an earlier run under the same key" in resumed.out
    assert summary(resumed.out)["refunded EUR"][0] == 4
    assert outcomes(report) == {f"resume-{n}": "refunded" for n in range(1, 5)}
    for number in range(1, 5):
        order_id = f"resume-{number}"
        assert [amount for _, amount in shop.stripe_refunds(order_id)] == [1000 * number]
        assert shop.order(order_id).amount_refunded == 1000 * number


class Crash(BaseException):
    """The process dying: nothing after it runs (no except clause of the command catches a BaseException)."""


def test_a_crash_between_stripes_answer_and_the_report_row_does_not_refund_twice(
    shop: Shop, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.paid("crash-1", 1000)
    shop.paid("crash-2", 2000)
    shop.paid("crash-3", 3000)
    orders = shop.orders_file("order_id\ncrash-1\ncrash-2\ncrash-3\n")
    report = orders.with_name("orders.csv.report.csv")
    real_add = refunds.ReportWriter.add
    rows_written = 0

    def add_then_crash(writer: refunds.ReportWriter, row: refunds.ReportRow) -> None:
        nonlocal rows_written
        if rows_written == 1:  # crash-2 was refunded at Stripe and in the store; its row is never written
            raise Crash
        rows_written += 1
        real_add(writer, row)

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(refunds.RateLimiter, "sleep", staticmethod(no_wait))
    monkeypatch.setattr(refunds.ReportWriter, "add", add_then_crash)
    with pytest.raises(Crash):
        gateway("refund", "--from-file", str(orders), "--yes")
    assert outcomes(report) == {"crash-1": "refunded"}
    [(crash_2_refund, _)] = shop.stripe_refunds("crash-2")

    monkeypatch.setattr(refunds.ReportWriter, "add", real_add)
    resumed = gateway("refund", "--from-file", str(orders), "--yes")

    assert resumed.code == 0, resumed.err
    rows = {row["order_id"]: row for row in report_rows(report)}
    assert rows["crash-2"]["outcome"] == "refunded"
    assert (
        rows["crash-2"]["refund_id"] == crash_2_refund
    )  # the refund already made, answered again by its key
    for order_id, amount in (("crash-1", 1000), ("crash-2", 2000), ("crash-3", 3000)):
        assert [refunded for _, refunded in shop.stripe_refunds(order_id)] == [amount]
        assert shop.order(order_id).amount_refunded == amount


def test_a_malformed_file_is_refused_naming_its_lines(shop: Shop, gateway: Gateway) -> None:
    shop.paid("fine-1")
    orders = shop.orders_file(
        "order_id,amount,reason\nfine-1,,\nbad-amount,10.00,\nbad-reason,100,because\nshort\n,100,\n"
    )

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 2
    assert "line 3: amount '10.00' is not a whole number of minor units" in ran.err
    assert "line 4: reason 'because' is not one of" in ran.err
    assert "line 5: 1 fields, the header has 3" in ran.err
    assert "line 6: no order_id" in ran.err
    assert "line 2" not in ran.err
    assert shop.stripe_refunds("fine-1") == []
    assert not orders.with_name("orders.csv.report.csv").exists()


def test_a_misspelt_column_is_refused(shop: Shop, gateway: Gateway) -> None:
    orders = shop.orders_file("order_id,ammount\nfine-1,100\n")

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 2
    assert "line 1: unknown column 'ammount'" in ran.err


def test_an_order_that_became_refundable_after_the_preview_is_not_refunded(
    shop: Shop, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer pays while the operator reads the preview, which said "not paid": the yes given was not for
    this refund, so it is not made (the report says to run again)."""
    shop.unpaid("late", 4200)
    orders = shop.orders_file("order_id\nlate\n")
    preview = refunds._bulk_preview

    def preview_then_the_customer_pays(bulk: Any, plans: Any) -> str:
        text = preview(bulk, plans)
        assert asyncio.run(dev_pay(shop.settings, "late", "visa")) == "succeeded"
        asyncio.run(shop._with_service(lambda service: service.sync_order("late", WEBHOOK)))
        return text

    monkeypatch.setattr(refunds, "_bulk_preview", preview_then_the_customer_pays)

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 1
    assert shop.stripe_refunds("late") == []
    assert outcomes(orders.with_name("orders.csv.report.csv")) == {"late": "failed"}
    assert "changed since the preview" in orders.with_name("orders.csv.report.csv").read_text()


def test_a_new_amount_for_an_order_refunded_before_is_refunded_not_skipped(
    shop: Shop, gateway: Gateway
) -> None:
    """The report's "refunded" row was for another amount: the new line is a new refund, made once."""
    shop.paid("twice-asked", 5000)
    first = gateway(
        "refund", "--from-file", str(shop.orders_file("order_id,amount\ntwice-asked,1000\n")), "--yes"
    )
    second = gateway(
        "refund", "--from-file", str(shop.orders_file("order_id,amount\ntwice-asked,2000\n")), "--yes"
    )
    again = gateway(
        "refund", "--from-file", str(shop.orders_file("order_id,amount\ntwice-asked,2000\n")), "--yes"
    )

    assert (first.code, second.code, again.code) == (0, 0, 0), second.err
    assert sorted(amount for _, amount in shop.stripe_refunds("twice-asked")) == [1000, 2000]


def test_a_file_naming_an_order_twice_is_refused(shop: Shop, gateway: Gateway) -> None:
    shop.paid("twice")
    shop.paid("once")
    orders = shop.orders_file("order_id,amount\ntwice,100\nonce,\ntwice,200\nonce,1.5\n")

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 2
    assert "order 'twice' is on lines 2, 4" in ran.err
    assert "line 5: amount '1.5'" in ran.err
    assert "order 'once' is on lines 3, 5" in ran.err  # a malformed line counts too: all is said at once
    assert shop.stripe_refunds("twice") == shop.stripe_refunds("once") == []


def test_a_progress_bar_on_a_terminal(shop: Shop, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    shop.paid("bar-1")
    shop.paid("bar-2")
    orders = shop.orders_file("order_id\nbar-1\nbar-2\n")
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 0
    assert "\r[###############---------------] 1/2  refunded 1" in screen.getvalue()
    assert "\r[##############################] 2/2  refunded 2" in screen.getvalue()


def test_a_report_of_something_else_is_refused(shop: Shop, gateway: Gateway) -> None:
    shop.paid("r-1")
    orders = shop.orders_file("order_id\nr-1\n")
    orders.with_name("orders.csv.report.csv").write_text("a,b\n1,2\n")

    ran = gateway("refund", "--from-file", str(orders), "--yes")

    assert ran.code == 2
    assert "not a report of this command" in ran.err
    assert shop.stripe_refunds("r-1") == []


# -- as a real process -------------------------------------------------------------------------------------------


def gateway_process(shop: Shop, *args: str, **options: Any) -> subprocess.Popen[str]:
    """`gateway ARGS` as the operator's shell starts it: its own process, no terminal."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "GATEWAY_", "NODE_ENV", "DATABASE_URL"))
    }
    env.update(shop.environment(), PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [str(GATEWAY), *args],
        env=env,
        cwd=shop.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def test_as_a_process_without_a_terminal_it_asks_for_yes(shop: Shop) -> None:
    shop.paid("proc-1")
    process = gateway_process(shop, "refund", "--order-id", "proc-1")
    out, err = process.communicate(timeout=SUBPROCESS_DEADLINE)

    assert process.returncode == 2
    assert "stdin is not a terminal" in err
    assert out == ""


def read_line(process: subprocess.Popen[str], deadline: float) -> str:
    """The process's next stdout line, or a failure once the deadline passes."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if selector.select(remaining):
                return process.stdout.readline()
    process.kill()
    pytest.fail("the command printed nothing in time")


def test_sigint_stops_a_file_after_the_current_order_and_a_rerun_finishes_it(shop: Shop) -> None:
    amounts = {f"sig-{n}": 500 * n for n in range(1, 6)}
    for order_id, amount in amounts.items():
        shop.paid(order_id, amount)
    orders = shop.orders_file("order_id\n" + "".join(f"{order_id}\n" for order_id in amounts))
    report = orders.with_name("orders.csv.report.csv")
    # Two refunds a second: the first order's row is written, then the run waits half a second for the next.
    process = gateway_process(shop, "refund", "--from-file", str(orders), "--yes", "--rate", "2")
    deadline = time.monotonic() + SUBPROCESS_DEADLINE
    while not (line := read_line(process, deadline)).startswith("line 2  sig-1: refunded"):
        assert line, "the command ended before refunding sig-1"
    assert outcomes(report) == {"sig-1": "refunded"}  # the report shows the first row
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=SUBPROCESS_DEADLINE)

    assert process.returncode == 130, err
    assert "stopping after the current order" in err
    assert f"to resume (refunded orders are skipped): gateway refund --from-file {orders} --rate 2" in err
    done_first = outcomes(report)
    assert set(done_first.values()) == {"refunded"}
    assert 1 <= len(done_first) < len(amounts)

    rerun = gateway_process(shop, "refund", "--from-file", str(orders), "--yes", "--rate", "50")
    out, err = rerun.communicate(timeout=SUBPROCESS_DEADLINE)

    assert rerun.returncode == 0, err
    assert f"{len(done_first)} refunded by an earlier run under the same key" in out
    assert outcomes(report) == dict.fromkeys(amounts, "refunded")
    for order_id, amount in amounts.items():
        assert [refunded for _, refunded in shop.stripe_refunds(order_id)] == [amount]
        assert shop.order(order_id).amount_refunded == amount
