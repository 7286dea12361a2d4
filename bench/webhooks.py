"""Webhook ingestion benchmark: signed Stripe events per second recorded and applied by the real gateway.

    .venv/bin/python bench/webhooks.py [--duration 10] [--warmup 2] [--connections 64,16]

The gateway runs as `gateway serve` (`python -m gateway.cli serve`: production app, production services, logging
as configured there, stdout to bench/results/webhooks.gateway.stdout.log) on a fresh SQLite file in a temporary
directory, pinned to core 0; `wrk -t1` on core 1 POSTs pre-signed `payment_intent.succeeded` events to
`/webhooks/stripe` through bench/wrk/webhooks.lua, each event once (distinct events: one per order, each recorded
and applied), then re-sends already applied events (duplicate deliveries). The orders are made beforehand through
`SqliteStore.create_order` and `update_order`, as the payment service makes them. Events are signed right before
each run, so their timestamps stay well inside the gateway's 300 s tolerance.

After each run the store is read back: every event answered `applied` must be applied exactly once (its row
`applied` with one delivery, its order `succeeded` with one webhook audit entry), an event sent but not answered
before wrk stopped may only be absent or applied, an event never sent must have left no trace, and a duplicate
delivery must change nothing but the delivery count. Any non-2xx answer, socket error or other outcome fails the
run. Then the section between `<!-- webhooks:start -->` and `<!-- webhooks:end -->` in bench/README.md is
rewritten and the raw numbers go to bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import importlib.metadata
import json
import math
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from run import (
    CLIENT_CORE,
    DEFAULT_DURATION,
    NOISE_LIMIT,
    READY_TIMEOUT,
    SERVER_CORE,
    BenchError,
    CpuMeter,
    WrkResult,
    command_line,
    free_port,
    machine,
    parse_wrk,
    rewrite_readme,
)

from gateway.store import AuditEntry, NewOrder, OrderUpdate, PaymentIntentRecord, PaymentStatus
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.signature import DEFAULT_TOLERANCE_SECONDS, sign

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
RESULTS: Final = BENCH / "results"
LUA: Final = BENCH / "wrk" / "webhooks.lua"
START_MARKER: Final = "<!-- webhooks:start -->"
END_MARKER: Final = "<!-- webhooks:end -->"
STOP_TIMEOUT: Final = 30.0

TARGET_EVENTS_PER_SECOND: Final = 1000.0
TARGET_CONNECTIONS: Final = 64
"""The target is judged on the distinct-event run at this many connections."""

WEBHOOK_PATH: Final = "/webhooks/stripe"
WEBHOOK_SECRET: Final = "whsec_bench_5f0c2a9d8e7b4c61a3d2e1f0b9c8d7e6"
"""The benchmark's own signing secret (the gateway gets it as STRIPE_WEBHOOK_SECRET)."""
SECRET_KEY: Final = "sk_test_bench_not_a_real_key"
"""A test-mode key: `gateway serve` starts no emulator, and the webhook route never calls Stripe."""
PUBLISHABLE_KEY: Final = "pk_test_bench_not_a_real_key"
APPLIED_ACTION: Final = "webhook.payment_intent.succeeded"
CURRENCY: Final = "eur"


def say(message: str) -> None:
    print(f"bench/webhooks: {message}", file=sys.stderr, flush=True)


# -- orders and events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOrder:
    order_id: str
    payment_intent_id: str
    amount: int
    event_id: str
    created: int
    """When the payment succeeded (the event's `created`); each delivery is signed at its own time."""


def make_orders(phase: str, count: int) -> list[BenchOrder]:
    tag, created = secrets.token_hex(3), int(time.time())
    return [
        BenchOrder(
            order_id=f"order-bench-{phase}-{tag}-{i:06d}",
            payment_intent_id=f"pi_3Bench{tag}{phase}{i:07d}",
            amount=500 + (i * 37) % 20_000,
            event_id=f"evt_3Bench{tag}{phase}{i:07d}",
            created=created,
        )
        for i in range(count)
    ]


async def _create_orders(database: Path, orders: list[BenchOrder]) -> None:
    """Each order as the payment service leaves it once its PaymentIntent exists: `create_order`, then
    `update_order` with the intent's id, status `requires_payment_method` and the intent's history row."""
    store = await SqliteStore.open(database)
    try:
        for order in orders:
            created, _ = await store.create_order(
                NewOrder(
                    order_id=order.order_id,
                    amount=order.amount,
                    currency=CURRENCY,
                    nonce=secrets.token_hex(8),
                ),
                AuditEntry(
                    action="order.created",
                    actor="anonymous",
                    request_id=None,
                    order_id=order.order_id,
                    details={"amount": order.amount, "currency": CURRENCY},
                ),
            )
            await store.update_order(
                order.order_id,
                created.version,
                OrderUpdate(
                    payment_intent_id=order.payment_intent_id, status=PaymentStatus.REQUIRES_PAYMENT_METHOD
                ),
                AuditEntry(
                    action="payment_intent.created",
                    actor="anonymous",
                    request_id=None,
                    order_id=order.order_id,
                    details={"paymentIntent": order.payment_intent_id, "attempt": 1},
                ),
                intent=PaymentIntentRecord(
                    id=order.payment_intent_id,
                    order_id=order.order_id,
                    attempt=1,
                    amount=order.amount,
                    currency=CURRENCY,
                    status="requires_payment_method",
                    created_at="",
                    updated_at="",
                ),
            )
    finally:
        await store.close()


def create_orders(database: Path, orders: list[BenchOrder]) -> float:
    """Create the orders; returns the seconds it took."""
    began = time.monotonic()
    asyncio.run(_create_orders(database, orders))
    return time.monotonic() - began


def event_body(order: BenchOrder) -> bytes:
    """A `payment_intent.succeeded` event as Stripe sends it (API 2024-06-20, pretty-printed, the whole
    PaymentIntent embedded), about one of our orders (`metadata.order_id`)."""
    intent = {
        "id": order.payment_intent_id,
        "object": "payment_intent",
        "amount": order.amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": order.amount,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{order.payment_intent_id}_secret_BenchBenchBenchBench",
        "confirmation_method": "automatic",
        "created": order.created - 42,
        "currency": CURRENCY,
        "customer": None,
        "description": None,
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": "ch_" + order.payment_intent_id.removeprefix("pi_"),
        "livemode": False,
        "metadata": {"order_id": order.order_id},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": "pm_1BenchVisa4242BenchBench",
        "payment_method_configuration_details": {"id": "pmc_1BenchBenchBenchBench", "parent": None},
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }
    event = {
        "id": order.event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": order.created,
        "data": {"object": intent},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_BenchBench" + order.event_id[-7:], "idempotency_key": None},
        "type": "payment_intent.succeeded",
    }
    return json.dumps(event, indent=2).encode()


def raw_request(port: int, body: bytes, signature: str) -> bytes:
    """The whole HTTP/1.1 request, with the headers Stripe sends."""
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
        "Accept: */*; q=0.5, application/xml\r\n"
        "Cache-Control: no-cache\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Stripe-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def write_requests(path: Path, port: int, orders: list[BenchOrder]) -> int:
    """Sign one event per order now and write the requests for webhooks.lua; returns the signing timestamp."""
    now = int(time.time())
    with path.open("wb") as file:
        for order in orders:
            body = event_body(order)
            request = raw_request(port, body, sign(body, WEBHOOK_SECRET, now))
            file.write(b"%d\n" % len(request))
            file.write(request)
    return now


# -- the gateway -----------------------------------------------------------------------------------------------

_SETTINGS_ENV: Final = (
    "NODE_ENV",
    "STRIPE_",
    "JWT_SECRET",
    "QR_SECRET",
    "DATABASE_URL",
    "GATEWAY_",
)
"""Prefixes of the variables the gateway reads: the caller's are dropped, only ours are set."""


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    def stderr_tail(self) -> str:
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-20:])

    def cpu_seconds(self) -> float:
        """User + system CPU of the gateway process so far, all its threads (aiosqlite's worker included)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_gateway(workdir: Path, database: Path) -> Gateway:
    """`gateway serve` on a free port, from `workdir` (so no `.env` of the checkout is read), pinned to core 0."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(_SETTINGS_ENV)}
    env.update(
        {
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DATABASE_URL": f"sqlite:///{database}",
            "GATEWAY_LOG_LEVEL": "INFO",
        }
    )
    stdout_path = RESULTS / "webhooks.gateway.stdout.log"
    stderr_path = RESULTS / "webhooks.gateway.stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [
                "taskset",
                "-c",
                SERVER_CORE,
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    return Gateway(process, port, stdout_path, stderr_path)


def post(port: int, body: bytes, signature: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            WEBHOOK_PATH,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(gateway: Gateway) -> float:
    """Poll the webhook route (a GET: 405, no store involved) until the gateway answers; the store is open by then,
    since aiohttp runs the app's start-up before it listens."""
    began = time.monotonic()
    while True:
        if gateway.process.poll() is not None:
            raise BenchError(
                f"the gateway exited with code {gateway.process.returncode} before answering:\n"
                + gateway.stderr_tail()
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=1)
            try:
                conn.request("GET", WEBHOOK_PATH)
                status = conn.getresponse().status
            finally:
                conn.close()
            if status != 405:
                raise BenchError(f"GET {WEBHOOK_PATH} answered {status}, not 405")
            return time.monotonic() - began
        except OSError:
            if time.monotonic() - began > READY_TIMEOUT:
                raise BenchError(
                    f"the gateway did not answer within {READY_TIMEOUT:.0f} s:\n{gateway.stderr_tail()}"
                ) from None
            time.sleep(0.02)  # polling interval, not a settle delay


def probe(gateway: Gateway, order: BenchOrder) -> None:
    """One event by hand before any load: answered `applied`, then `duplicate` when delivered again."""
    now = int(time.time())
    body = event_body(order)
    for expected in ("applied", "duplicate"):
        status, answer = post(gateway.port, body, sign(body, WEBHOOK_SECRET, now))
        try:
            outcome = json.loads(answer).get("outcome") if status == 200 else None
        except ValueError:
            outcome = None
        if outcome != expected:
            raise BenchError(f"probe event: expected 200 {expected}, got {status} {answer[:300]!r}")


def stop_gateway(gateway: Gateway) -> None:
    if gateway.process.poll() is None:
        gateway.process.terminate()
        try:
            gateway.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()


# -- wrk -------------------------------------------------------------------------------------------------------


@dataclass
class LuaCounts:
    sent: int
    """Requests written (each a distinct event in `once` mode)."""
    exhausted: int
    """1 if every prepared event was sent before the time was up (the run then measured nothing useful)."""
    applied: int
    duplicate: int
    other: int
    non_200: int


def run_wrk(
    port: int, requests_file: Path, mode: str, duration: int, connections: int, answered: Path | None
) -> tuple[WrkResult, LuaCounts]:
    command = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        "--",
        str(requests_file),
        mode,
    ]
    env = dict(os.environ)
    env.pop("WEBHOOK_BENCH_ANSWERED", None)
    if answered is not None:
        env["WEBHOOK_BENCH_ANSWERED"] = str(answered)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 120, check=False, env=env
    )
    if done.returncode != 0 or "webhooks.lua:" in done.stderr:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    summary = next((line for line in done.stdout.splitlines() if line.startswith("webhooks.lua: ")), None)
    if summary is None:
        raise BenchError(f"webhooks.lua wrote no summary:\n{done.stdout}")
    counts = LuaCounts(**json.loads(summary.removeprefix("webhooks.lua: ")))
    if result.non_2xx or counts.non_200 or any(result.socket_errors.values()):
        raise BenchError(
            f"wrk saw {result.non_2xx} non-2xx responses ({counts.non_200} not 200) and socket errors "
            f"{result.socket_errors}:\n{done.stdout}"
        )
    return result, counts


# -- reading the store back ------------------------------------------------------------------------------------


@dataclass
class StoreState:
    events: dict[str, tuple[str, int, str | None]]
    """Event id -> (status, deliveries, order id)."""
    orders: dict[str, tuple[str, int, int, int]]
    """Order id -> (status, version, amount, amount_received)."""
    applied_audits: Counter[str]
    """Order id -> webhook audit entries (`webhook.payment_intent.succeeded`)."""


def read_store(database: Path) -> StoreState:
    conn = sqlite3.connect(database, timeout=10)
    try:
        events = {
            row[0]: (row[1], row[2], row[3])
            for row in conn.execute("SELECT id, status, deliveries, order_id FROM webhook_events")
        }
        orders = {
            row[0]: (row[1], row[2], row[3], row[4])
            for row in conn.execute("SELECT order_id, status, version, amount, amount_received FROM orders")
        }
        audits = Counter(
            {
                row[0]: row[1]
                for row in conn.execute(
                    "SELECT order_id, count(*) FROM audit_log WHERE action = ? GROUP BY order_id",
                    (APPLIED_ACTION,),
                )
            }
        )
    finally:
        conn.close()
    return StoreState(events, orders, audits)


def settle(database: Path) -> None:
    """Wait until the requests still in the gateway when wrk stopped are done: the events table stops changing."""
    last: tuple[int, int] | None = None
    steady = 0
    deadline = time.monotonic() + 30
    while steady < 3:
        conn = sqlite3.connect(database, timeout=10)
        try:
            count, deliveries, applied = conn.execute(
                "SELECT count(*), coalesce(sum(deliveries), 0), sum(status = 'applied') FROM webhook_events"
            ).fetchone()
        finally:
            conn.close()
        now = (count + deliveries, applied or 0)
        steady = steady + 1 if now == last else 0
        last = now
        if time.monotonic() > deadline:
            raise BenchError("the store kept changing for 30 s after wrk stopped")
        time.sleep(0.1)


def _is_applied_once(state: StoreState, order: BenchOrder, deliveries: int = 1) -> str | None:
    """None if the order's event is applied exactly once, else what is wrong."""
    event = state.events.get(order.event_id)
    if event != ("applied", deliveries, order.order_id):
        return f"event {order.event_id}: {event}, expected ('applied', {deliveries}, {order.order_id!r})"
    row = state.orders.get(order.order_id)
    if row != ("succeeded", 3, order.amount, order.amount):
        return f"order {order.order_id}: {row}, expected ('succeeded', 3, {order.amount}, {order.amount})"
    audits = state.applied_audits[order.order_id]
    if audits != 1:
        return f"order {order.order_id}: {audits} `{APPLIED_ACTION}` audit entries, expected 1"
    return None


def _is_untouched(state: StoreState, order: BenchOrder) -> str | None:
    if order.event_id in state.events:
        return f"event {order.event_id} was never sent but is recorded: {state.events[order.event_id]}"
    row = state.orders.get(order.order_id)
    if row != ("requires_payment_method", 2, order.amount, 0) or state.applied_audits[order.order_id]:
        return f"order {order.order_id} was never paid by an event but is {row}"
    return None


def verify_distinct(
    database: Path, orders: list[BenchOrder], counts: LuaCounts, answered: Path
) -> tuple[dict[str, int], list[BenchOrder]]:
    """The store after a `once` run: answered events applied exactly once; the rest applied once or untouched.
    Returns counts, and the orders whose event is applied."""
    state = read_store(database)
    answered_ids = answered.read_text().split()
    if len(answered_ids) != counts.applied or len(set(answered_ids)) != len(answered_ids):
        raise BenchError(
            f"{len(answered_ids)} answered ids ({len(set(answered_ids))} distinct) for {counts.applied} `applied`"
        )
    sent, answered_set = orders[: counts.sent], set(answered_ids)
    if not answered_set <= {order.event_id for order in sent}:
        raise BenchError("an `applied` answer names an event that was not sent")
    problems: list[str] = []
    in_flight_applied = in_flight_absent = 0
    applied: list[BenchOrder] = []
    for order in sent:
        if order.event_id in answered_set:
            problem = _is_applied_once(state, order)
            applied.append(order)
        elif order.event_id not in state.events:
            # Sent as wrk stopped, not yet read by the gateway when the connection closed: never acknowledged,
            # so Stripe would deliver it again. Its order must be untouched.
            problem = _is_untouched(state, order)
            in_flight_absent += 1
        else:
            problem = _is_applied_once(
                state, order
            )  # handled after wrk stopped listening: applied all the same
            applied.append(order)
            in_flight_applied += 1
        if problem:
            problems.append(problem)
    for order in orders[counts.sent :]:
        if problem := _is_untouched(state, order):
            problems.append(problem)
    if problems:
        raise BenchError(
            f"{len(problems)} events not applied exactly once, e.g.:\n" + "\n".join(problems[:10])
        )
    checks = {
        "events_prepared": len(orders),
        "events_sent": counts.sent,
        "answered_applied": counts.applied,
        "sent_at_the_end_and_applied_unanswered": in_flight_applied,
        "sent_at_the_end_and_never_read": in_flight_absent,
        "applied_in_store": len(applied),
    }
    return checks, applied


def verify_duplicates(
    database: Path, orders: list[BenchOrder], before: StoreState, counts: LuaCounts
) -> dict[str, int]:
    """The store after re-sending applied events: only delivery counts moved, by at least the answers given."""
    state = read_store(database)
    problems: list[str] = []
    redeliveries = 0
    for order in orders:
        was = before.events[order.event_id]
        now = state.events.get(order.event_id)
        if now is None or now[0] != "applied" or now[2] != order.order_id or now[1] < was[1]:
            problems.append(f"event {order.event_id}: {was} before, {now} after")
            continue
        redeliveries += now[1] - was[1]
        if problem := _is_applied_once(state, order, deliveries=now[1]):
            problems.append(problem)
    if set(state.events) != set(before.events):
        problems.append(f"{len(set(state.events) - set(before.events))} new event rows")
    if not counts.duplicate <= redeliveries <= counts.sent:
        problems.append(
            f"{redeliveries} deliveries counted in the store for {counts.duplicate} `duplicate` answers and "
            f"{counts.sent} requests sent"
        )
    if problems:
        raise BenchError("duplicate deliveries changed the store:\n" + "\n".join(problems[:10]))
    return {
        "events_cycled": len(orders),
        "answered_duplicate": counts.duplicate,
        "deliveries_counted": redeliveries,
    }


# -- the runs --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    scenario: str
    """`distinct` (each event new: recorded and applied) or `duplicate` (already applied: recorded only)."""
    connections: int
    duration_s: int
    events_per_second: float
    requests: int
    latency_ms: dict[str, float]
    server_cpu_s: float
    """CPU the gateway process used during the run (all threads)."""
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99(self) -> float:
        return self.latency_ms["99"]

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else math.nan

    @property
    def server_core_busy(self) -> float:
        return self.server_cpu_s / self.duration_s


def _measure(
    gateway: Gateway, requests_file: Path, mode: str, duration: int, connections: int, answered: Path | None
) -> tuple[WrkResult, LuaCounts, float]:
    cpu = gateway.cpu_seconds()
    result, counts = run_wrk(gateway.port, requests_file, mode, duration, connections, answered)
    cpu = gateway.cpu_seconds() - cpu
    if counts.applied + counts.duplicate + counts.other != result.requests:
        raise BenchError(f"webhooks.lua read {counts} for the {result.requests} responses wrk counted")
    return result, counts, cpu


def run_distinct(
    gateway: Gateway,
    database: Path,
    workdir: Path,
    orders: list[BenchOrder],
    duration: int,
    connections: int,
    *,
    warmup: bool = False,
) -> tuple[RunResult, LuaCounts, list[BenchOrder]]:
    """Each prepared event sent at most once, then the store checked; returns the run, what webhooks.lua counted
    and the orders whose event is now applied."""
    requests_file, answered = workdir / "distinct.requests", workdir / "distinct.answered"
    write_requests(requests_file, gateway.port, orders)
    result, counts, cpu = _measure(gateway, requests_file, "once", duration, connections, answered)
    if counts.exhausted and not warmup:
        raise BenchError(
            f"all {len(orders)} prepared events were sent within {duration} s at {connections} connections: "
            "the measurement is cut short; re-run with a larger --headroom"
        )
    if counts.duplicate or counts.other:
        raise BenchError(f"distinct events answered other than `applied`: {counts}")
    settle(database)
    checks, applied = verify_distinct(database, orders, counts, answered)
    run = RunResult(
        "distinct",
        connections,
        duration,
        result.requests_per_second,
        result.requests,
        result.latency_ms,
        cpu,
        checks,
    )
    return run, counts, applied


def run_duplicates(
    gateway: Gateway, database: Path, workdir: Path, orders: list[BenchOrder], duration: int, connections: int
) -> RunResult:
    requests_file = workdir / "duplicate.requests"
    before = read_store(database)
    write_requests(requests_file, gateway.port, orders)  # signed anew, as Stripe signs each delivery
    result, counts, cpu = _measure(gateway, requests_file, "cycle", duration, connections, None)
    if counts.applied or counts.other:
        raise BenchError(f"re-sent events answered other than `duplicate`: {counts}")
    settle(database)
    checks = verify_duplicates(database, orders, before, counts)
    return RunResult(
        "duplicate",
        connections,
        duration,
        result.requests_per_second,
        result.requests,
        result.latency_ms,
        cpu,
        checks,
    )


def events_needed(rate: float, duration: int, headroom: float, connections: int) -> int:
    """Distinct events to prepare for a run: never fewer than the target rate would send."""
    return math.ceil(max(rate, TARGET_EVENTS_PER_SECOND) * headroom * duration) + connections


@dataclass
class Session:
    runs: list[RunResult]
    warmup_events_per_second: float
    setup_orders: int
    setup_seconds: float
    ready_seconds: float
    log_lines: int
    log_bytes: int
    access_lines: int
    applied_lines: int


def bench(args: argparse.Namespace, connections: list[int], workdir: Path) -> Session:
    database = workdir / "gateway.sqlite3"
    warmup_orders = make_orders("w", math.ceil(2.5 * TARGET_EVENTS_PER_SECOND * max(args.warmup, 1)))
    probe_order = make_orders("p", 1)
    say(f"creating {len(warmup_orders) + 1} orders for the probe and the warm-up")
    setup_seconds = create_orders(database, probe_order + warmup_orders)
    setup_orders = len(warmup_orders) + 1
    gateway = start_gateway(workdir, database)
    runs: list[RunResult] = []
    try:
        ready = wait_ready(gateway)
        probe(gateway, probe_order[0])
        rate = TARGET_EVENTS_PER_SECOND
        if args.warmup > 0:
            warmup, counts, _ = run_distinct(
                gateway, database, workdir, warmup_orders, args.warmup, connections[0], warmup=True
            )
            rate = warmup.events_per_second * (2 if counts.exhausted else 1)
            say(f"warm-up: {warmup.events_per_second:,.0f} events/s ({counts.sent} sent)")
        applied_by_connections: dict[int, list[BenchOrder]] = {}
        for count in connections:
            orders = make_orders(f"c{count}x", events_needed(rate, args.duration, args.headroom, count))
            say(
                f"creating {len(orders)} orders for {args.duration} s of distinct events at {count} connections"
            )
            setup_seconds += create_orders(database, orders)
            setup_orders += len(orders)
            run, _, applied_by_connections[count] = run_distinct(
                gateway, database, workdir, orders, args.duration, count
            )
            runs.append(run)
            say(
                f"distinct, {count} connections: {run.events_per_second:,.0f} events/s, p50 {run.p50:.2f} ms, "
                f"p99 {run.p99:.2f} ms, {run.cpu_us_per_event:,.0f} µs gateway CPU per event"
            )
        for count in connections:
            run = run_duplicates(
                gateway, database, workdir, applied_by_connections[count], args.duration, count
            )
            runs.append(run)
            say(
                f"duplicate, {count} connections: {run.events_per_second:,.0f} events/s, p50 {run.p50:.2f} ms, "
                f"p99 {run.p99:.2f} ms, {run.cpu_us_per_event:,.0f} µs gateway CPU per event"
            )
    finally:
        stop_gateway(gateway)
    lines = gateway.stdout_path.read_bytes().splitlines()
    access = sum(1 for line in lines if b'"path":"/webhooks/stripe"' in line)
    applied_lines = sum(1 for line in lines if b'"event":"webhook_event_applied"' in line)
    return Session(
        runs,
        rate,
        setup_orders,
        setup_seconds,
        ready,
        len(lines),
        gateway.stdout_path.stat().st_size,
        access,
        applied_lines,
    )


def check_logs(session: Session, database: Path) -> None:
    """One access line per request the gateway answered, one `webhook_event_applied` per event applied."""
    answered = sum(run.requests for run in session.runs)
    if session.access_lines < answered:
        raise BenchError(f"{session.access_lines} access lines for at least {answered} webhook requests")
    state = read_store(database)
    applied = sum(1 for status, _, _ in state.events.values() if status == "applied")
    if session.applied_lines != applied:
        raise BenchError(
            f"{session.applied_lines} `webhook_event_applied` lines for {applied} applied events"
        )
    if sum(state.applied_audits.values()) != applied:
        raise BenchError(
            f"{sum(state.applied_audits.values())} webhook audit entries for {applied} applied events"
        )


# -- report ----------------------------------------------------------------------------------------------------


def _filesystem(path: Path) -> str:
    """The type of the file system holding `path` (longest mount point that is a prefix of it)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fs_type, *_ = line.split()
            if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(mount) > len(
                best
            ):
                best, kind = mount, fs_type
    except OSError:
        pass
    return kind


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for package in ("aiohttp", "msgspec", "aiosqlite", "loguru"):
        found[package] = importlib.metadata.version(package)
    found["SQLite"] = sqlite3.sqlite_version
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    found["wrk"] = (done.stdout or done.stderr).split(" [")[0].removeprefix("wrk ").strip()
    return found


def target_check(runs: list[RunResult]) -> dict[str, Any]:
    judged = next((r for r in runs if r.scenario == "distinct" and r.connections == TARGET_CONNECTIONS), None)
    measured = judged.events_per_second if judged else None
    return {
        "name": f"distinct events/s at {TARGET_CONNECTIONS} connections",
        "measured": measured,
        "target": f">= {TARGET_EVENTS_PER_SECOND:,.0f}",
        "passed": None if measured is None else measured >= TARGET_EVENTS_PER_SECOND,
    }


def render(report: dict[str, Any], runs: list[RunResult]) -> str:
    check = report["target"]
    verdict = "n/a" if check["passed"] is None else ("**pass**" if check["passed"] else "**FAIL**")
    measured = "n/a" if check["measured"] is None else f"{check['measured']:,.0f}"
    session = report["session"]
    lines = [
        START_MARKER,
        "",
        "_Written by `bench/webhooks.py`; do not edit by hand._",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}` (from the repository root)",
        f"- load: {report['duration_s']} s per run after a {report['warmup_s']} s warm-up, `wrk -t1` on core "
        f"{CLIENT_CORE}, `gateway serve` on core {SERVER_CORE}",
        f"- machine: `nproc` = {report['machine']['nproc']}, {report['machine']['cpu']}, "
        f"Linux {report['machine']['kernel']}, load average at start {report['machine']['load_average_at_start']}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in report["versions"].items()),
        f"- store: a new SQLite file on {report['store']['filesystem']} ({report['store']['mode']}), "
        f"{session['setup_orders']:,} orders made beforehand in {session['setup_seconds']:.0f} s; "
        f"{report['store']['events_applied']:,} events applied in all, each exactly once (checked)",
        f"- gateway log: {session['log_lines']:,} JSON lines ({session['log_bytes'] / 1e6:.1f} MB) in "
        "bench/results/webhooks.gateway.stdout.log",
        f"- other processes used {100 * report['other_processes_cpu_share']:.0f} % of the machine's CPU "
        "during the run",
    ]
    caveats = []
    if report["duration_s"] < DEFAULT_DURATION:
        caveats.append(f"a short run ({report['duration_s']} s per run)")
    if report["other_processes_cpu_share"] > NOISE_LIMIT:
        caveats.append("a busy machine")
    if caveats:
        lines += ["", f"**Orientation only: {' and '.join(caveats)}.**"]
    lines += [
        "",
        "| events | connections | events/s | p50 | p99 | gateway CPU per event | gateway core busy |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    titles = {"distinct": "new (recorded + applied)", "duplicate": "duplicate delivery (recorded only)"}
    for run in runs:
        lines.append(
            f"| {titles[run.scenario]} | {run.connections} | {run.events_per_second:,.0f} | {run.p50:.2f} ms "
            f"| {run.p99:.2f} ms | {run.cpu_us_per_event:,.0f} µs | {100 * run.server_core_busy:.0f} % |"
        )
    lines += [
        "",
        "| check | measured | target | result |",
        "|---|--:|---|---|",
        f"| {check['name']} | {measured} | {check['target']} | {verdict} |",
        "",
        END_MARKER,
    ]
    return "\n".join(lines)


def preflight(connections: list[int]) -> None:
    for tool in ("taskset", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed: run `bash bench/setup`")
    if not {0, 1} <= os.sched_getaffinity(0):
        raise BenchError("cores 0 and 1 must both be available: the gateway runs on one, wrk on the other")
    if TARGET_CONNECTIONS not in connections:
        say(f"note: the target is judged at {TARGET_CONNECTIONS} connections, which this run leaves out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION, help="seconds per run (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up, distinct events (default 2)"
    )
    parser.add_argument(
        "--connections",
        default="64,16",
        help="comma-separated connection counts, each run in turn (default 64,16)",
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.6,
        help="distinct events prepared per run: the warm-up's rate (at least the target's) x duration x this",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (database, requests)"
    )
    args = parser.parse_args(argv)
    try:
        connections = [int(part) for part in args.connections.split(",")]
    except ValueError:
        parser.error("--connections takes numbers separated by commas")
    if not connections or min(connections) < 1 or args.duration < 1 or args.headroom < 1:
        parser.error("connections and duration must be positive, headroom at least 1")
    if (args.duration + args.warmup) * 2 > DEFAULT_TOLERANCE_SECONDS:
        parser.error(f"runs this long would outlive the signatures' {DEFAULT_TOLERANCE_SECONDS} s tolerance")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-webhook-bench-"))
    try:
        preflight(connections)
        RESULTS.mkdir(exist_ok=True)
        report: dict[str, Any] = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command_line(),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": connections,
            "machine": machine(),
            "versions": versions(),
        }
        meter = CpuMeter()
        session = bench(args, connections, workdir)
        report["other_processes_cpu_share"] = round(meter.others_share(), 3)
        database = workdir / "gateway.sqlite3"
        check_logs(session, database)
        state = read_store(database)
        report["store"] = {
            "filesystem": _filesystem(workdir),
            "mode": "WAL, synchronous=NORMAL, as gateway.store.sqlite sets it: every event is committed before "
            "its 2xx and survives a crash of the gateway process; a power cut may lose the last commits",
            "events_applied": sum(1 for status, _, _ in state.events.values() if status == "applied"),
            "orders": len(state.orders),
        }
    except BenchError as error:
        say(f"failed: {error}")
        say(f"the temporary directory is kept for inspection (remove it when done): {workdir}")
        return 1
    if args.keep:
        say(f"temporary directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    session_fields = asdict(session)
    session_fields.pop("runs")
    report["session"] = session_fields
    report["runs"] = [
        {
            **asdict(run),
            "p50_ms": run.p50,
            "p99_ms": run.p99,
            "cpu_us_per_event": round(run.cpu_us_per_event, 1),
            "server_core_busy": round(run.server_core_busy, 3),
        }
        for run in session.runs
    ]
    report["target"] = target_check(session.runs)
    section = render(report, session.runs)
    print(section)
    (RESULTS / "webhooks.json").write_text(json.dumps(report, indent=2) + "\n")
    if TARGET_CONNECTIONS in connections:
        rewrite_readme(section, START_MARKER, END_MARKER)
        say("results written to bench/README.md and bench/results/webhooks.json")
    else:
        say(f"no run at {TARGET_CONNECTIONS} connections: bench/README.md left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
