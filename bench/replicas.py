"""The payment flow through nginx: one gateway replica on SQLite vs one and two replicas on PostgreSQL.

    .venv/bin/python bench/replicas.py [--duration 10] [--warmup 2] [--connections 32] [--rounds 2]

"The payment flow" is `POST /trpc/stripe.createPaymentIntent` for a new order each time (bench/wrk/replicas.lua:
a unique order id per request, the tests' bearer token): the gateway writes the order to its store, creates the
PaymentIntent at Stripe with an idempotency key, and records it. Creates only; no getPaymentStatus in between.
Three configurations, each as a deployment would run it: `gateway serve` processes (tests/support/gateway_process.py)
behind the same Debian nginx round robin (tests/support/nginx.py), all talking to ONE local Stripe emulator process
(tests/support/stripe_emulator.py):

1. `sqlite-1`: one replica on a new SQLite file;
2. `postgres-1`: one replica on a new PostgreSQL schema (the store's cost, without the replica count);
3. `postgres-2`: two replicas sharing a new PostgreSQL schema.

Rate limits are off (GATEWAY_RATE_LIMIT_USER=0, GATEWAY_RATE_LIMIT_CLIENT=0: one wrk client makes thousands of
orders). The configurations alternate in rounds (1, 2, 3, 1, 2, 3 by default), so that the machine's drift hits
each alike. For each measurement: the emulator is emptied, the deployment started fresh (new store, new
processes), one order created and its status read by hand (the answers' shape checked), a warm-up, then the
measurement, `wrk -t1` with `--timeout 10s`. Nothing is pinned to a core: with nginx, one or two replicas, the
emulator, PostgreSQL and wrk there are more busy processes than the machine's cores.

CPU time (utime + stime, /proc/<pid>/stat) of each process over the measurement says where the time went: the
emulator, each replica (all its threads), PostgreSQL (every `postgres` process, its exited backends included
through the postmaster's children time), nginx (master and worker), wrk, `kernel` (kernel threads: kworkers,
ksoftirqd, journal); `other` is the machine's busy time (/proc/stat, interrupts included) minus all of those.

After the warm-up and after the measurement the store is read once it stops changing: the orders holding a
PaymentIntent must number at least the 200s wrk counted and at most the requests it sent (those in flight when it
stopped may or may not have got through). After the measurement every PaymentIntent at the emulator is listed
(`/v1/payment_intents`, pages of 100): one per order of the store that holds one, with that id, and none for an order
the store lacks. Any non-2xx answer, socket error, timeout or failed check fails the run (exit status 1). Then the
section between `<!-- replicas:start -->` and `<!-- replicas:end -->` in bench/README.md is rewritten and the raw
numbers go to bench/results/replicas.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest
from run import (
    DEFAULT_DURATION,
    NOISE_LIMIT,
    BenchError,
    WrkResult,
    command_line,
    command_output,
    machine,
    parse_wrk,
    rewrite_readme,
)

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support, when run as `python bench/replicas.py`

from tests.support.gateway_process import GatewayProcess, gateway_process, replica_env  # noqa: E402
from tests.support.nginx import LoadBalancer, load_balancer, nginx_binary  # noqa: E402
from tests.support.postgres import postgres_schema, postgres_url  # noqa: E402
from tests.support.stripe_emulator import StripeEmulator, start_emulator  # noqa: E402
from tests.support.tokens import token_for  # noqa: E402

RESULTS: Final = BENCH / "results"
LUA: Final = BENCH / "wrk" / "replicas.lua"
START_MARKER: Final = "<!-- replicas:start -->"
END_MARKER: Final = "<!-- replicas:end -->"
CREATE: Final = "/trpc/stripe.createPaymentIntent"
STATUS: Final = "/trpc/stripe.getPaymentStatus"
USER: Final = "alice"
AMOUNT: Final = 2500
CURRENCY: Final = "eur"
WRK_TIMEOUT: Final = "10s"
SETTLE_DEADLINE: Final = 30.0
PAGE: Final = 100
SATURATED: Final = 0.85
"""A process (or the machine) busy at least this share of a core (of its cores) counts as saturated."""
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"bench/replicas: {message}", file=sys.stderr, flush=True)


# -- configurations --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    key: str
    title: str
    store: str
    """`sqlite` or `postgres`."""
    replicas: int


CONFIGS: Final = (
    Config("sqlite-1", "1 replica, SQLite", "sqlite", 1),
    Config("postgres-1", "1 replica, PostgreSQL", "postgres", 1),
    Config("postgres-2", "2 replicas, PostgreSQL", "postgres", 2),
)


@dataclass
class Deployment:
    config: Config
    database_url: str
    replicas: list[GatewayProcess]
    balancer: LoadBalancer


@contextlib.contextmanager
def _schema(runner: asyncio.Runner) -> Iterator[str]:
    """`postgres_schema()` (an async context manager) from synchronous code: a fresh schema, dropped after."""
    manager = postgres_schema()
    url = runner.run(manager.__aenter__())
    try:
        yield url
    finally:
        runner.run(manager.__aexit__(None, None, None))


@contextlib.contextmanager
def deployment(
    config: Config, workdir: Path, emulator: StripeEmulator, runner: asyncio.Runner
) -> Iterator[Deployment]:
    """The configuration's replicas on a new store behind nginx, all answering; stopped on the way out."""
    with contextlib.ExitStack() as stack:
        if config.store == "sqlite":
            database_url = f"sqlite:///{workdir / 'gateway.sqlite3'}"  # an absolute path: sqlite:////…
        else:
            database_url = stack.enter_context(_schema(runner))
        env = replica_env(database_url, emulator)
        replicas = []
        for number in range(1, config.replicas + 1):
            directory = workdir / f"replica-{number}"
            directory.mkdir()
            replicas.append(stack.enter_context(gateway_process(directory, env)))
        ports = [int(replica.base_url.rsplit(":", 1)[1]) for replica in replicas]
        balancer = stack.enter_context(load_balancer(workdir / "nginx", ports))
        yield Deployment(config, database_url, replicas, balancer)


# -- the store -------------------------------------------------------------------------------------------------


def _sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


async def _postgres_rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def store_rows(dep: Deployment, runner: asyncio.Runner, query: str) -> list[tuple[Any, ...]]:
    if dep.config.store == "sqlite":
        conn = sqlite3.connect(_sqlite_path(dep.database_url), timeout=10)
        try:
            return list(conn.execute(query).fetchall())
        finally:
            conn.close()
    return runner.run(_postgres_rows(dep.database_url, query))


@dataclass(frozen=True)
class OrderCounts:
    orders: int
    with_intent: int


def settle(dep: Deployment, runner: asyncio.Runner) -> OrderCounts:
    """The store's order counts once the requests still in the replicas when wrk stopped are done: unchanged over
    three polls."""
    last: OrderCounts | None = None
    steady = 0
    deadline = time.monotonic() + SETTLE_DEADLINE
    while True:
        ((orders, with_intent),) = store_rows(
            dep, runner, "SELECT count(*), count(payment_intent_id) FROM orders"
        )
        now = OrderCounts(int(orders), int(with_intent))
        steady = steady + 1 if now == last else 0
        last = now
        if steady >= 3:
            return now
        if time.monotonic() > deadline:
            raise BenchError(f"the store kept changing for {SETTLE_DEADLINE:.0f} s after wrk stopped")
        time.sleep(0.1)  # polling interval, bounded by the deadline


# -- HTTP by hand ----------------------------------------------------------------------------------------------


def _request(
    url: str, headers: dict[str, str], body: bytes | None = None, method: str = "GET"
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500]


def probe(dep: Deployment, token: str) -> None:
    """One createPaymentIntent and one getPaymentStatus by hand, through nginx: the answers wrk will count."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    order_id = f"bench-probe-{secrets.token_hex(4)}"
    payload = json.dumps({"orderId": order_id, "amount": AMOUNT, "currency": CURRENCY}).encode()
    status, body = _request(dep.balancer.base_url + CREATE, headers, payload, "POST")
    data = body.get("result", {}).get("data", {}) if isinstance(body, dict) else {}
    if (
        status != 200
        or not str(data.get("paymentIntentId", "")).startswith("pi_")
        or not data.get("clientSecret")
    ):
        raise BenchError(f"probe createPaymentIntent: {status} {body!r}")
    query = urllib.parse.quote(json.dumps({"orderId": order_id}, separators=(",", ":")), safe="")
    status, answer = _request(f"{dep.balancer.base_url}{STATUS}?input={query}", headers)
    if status != 200 or not isinstance(answer, dict) or "data" not in answer.get("result", {}):
        raise BenchError(f"probe getPaymentStatus: {status} {answer!r}")


def emulator_intents(emulator: StripeEmulator) -> list[tuple[str, str | None]]:
    """Every PaymentIntent the emulator holds: (id, metadata.order_id), paging through the list."""
    headers = {"Authorization": f"Bearer {emulator.secret_key}"}
    found: list[tuple[str, str | None]] = []
    after: str | None = None
    while True:
        query = {"limit": str(PAGE)} | ({"starting_after": after} if after else {})
        status, page = _request(
            f"{emulator.api_base}/v1/payment_intents?{urllib.parse.urlencode(query)}", headers
        )
        if status != 200 or not isinstance(page, dict):
            raise BenchError(f"listing the emulator's PaymentIntents: {status} {page!r}")
        for intent in page["data"]:
            found.append((intent["id"], (intent.get("metadata") or {}).get("order_id")))
        if not page["has_more"] or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def verify_emulator(dep: Deployment, runner: asyncio.Runner, emulator: StripeEmulator) -> dict[str, int]:
    """One PaymentIntent at Stripe per order holding one, the same id; none for an order the store lacks."""
    orders = dict(store_rows(dep, runner, "SELECT order_id, payment_intent_id FROM orders"))
    intents = emulator_intents(emulator)
    by_order = Counter(order_id for _, order_id in intents)
    problems = [f"{count} PaymentIntents for order {order}" for order, count in by_order.items() if count > 1]
    problems += [
        f"PaymentIntent {pi} for order {order}, unknown" for pi, order in intents if order not in orders
    ]
    at_stripe = {order: pi for pi, order in intents}
    problems += [
        f"order {order} holds {pi}, the emulator has {at_stripe.get(order)}"
        for order, pi in orders.items()
        if pi is not None and at_stripe.get(order) != pi
    ]
    if problems:
        raise BenchError(
            f"{len(problems)} mismatches between store and emulator, e.g.:\n" + "\n".join(problems[:10])
        )
    return {
        "intents_at_emulator": len(intents),
        "orders_in_store": len(orders),
        "orders_without_intent": sum(1 for pi in orders.values() if pi is None),
    }


# -- CPU -------------------------------------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime: the process's threads, and its children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def _pgrep(*arguments: str) -> list[int]:
    done = subprocess.run(["pgrep", *arguments], capture_output=True, text=True, check=False)
    return [int(pid) for pid in done.stdout.split()]


def _kernel_threads() -> list[int]:
    """kthreadd and its children (kworkers, ksoftirqd, the file systems' journal threads)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == 2 or entry.name == "2":
            found.append(int(entry.name))
    return found


def _machine_busy() -> float:
    # cpu  user nice system idle iowait irq softirq steal ...
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    # Interrupts included: the loopback traffic's softirq time is mostly charged to the processes' stime too.
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def cpu_snapshot(dep: Deployment, emulator_pid: int) -> dict[str, float]:
    groups: dict[str, list[int]] = {"emulator": [emulator_pid]}
    for number, replica in enumerate(dep.replicas, 1):
        groups[f"replica-{number}"] = [replica.process.pid]
    if dep.config.store == "postgres":
        groups["postgres"] = _pgrep("-x", "postgres")
    groups["nginx"] = [dep.balancer.process.pid, *_pgrep("-P", str(dep.balancer.process.pid))]
    groups["kernel"] = _kernel_threads()
    snapshot = {name: sum(_process_cpu(pid) for pid in pids) for name, pids in groups.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    snapshot["wrk"] = children.ru_utime + children.ru_stime  # the only child reaped during a measurement
    snapshot["machine"] = _machine_busy()
    return snapshot


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    used = {name: round(after[name] - before[name], 2) for name in after}
    used["other"] = round(used["machine"] - sum(v for k, v in used.items() if k != "machine"), 2)
    return used


# -- wrk -------------------------------------------------------------------------------------------------------


@dataclass
class LuaCounts:
    sent: int
    created: int
    non_200: int
    other: int


def run_wrk(dep: Deployment, token: str, duration: int, connections: int) -> tuple[WrkResult, LuaCounts]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA),
        dep.balancer.base_url + CREATE,
        "--",
        secrets.token_hex(4),
        token,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
    if done.returncode != 0 or "replicas.lua:" in done.stderr:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    summary = next((line for line in done.stdout.splitlines() if line.startswith("replicas.lua: ")), None)
    if summary is None:
        raise BenchError(f"replicas.lua wrote no summary:\n{done.stdout}")
    counts = LuaCounts(**json.loads(summary.removeprefix("replicas.lua: ")))
    if result.non_2xx or counts.non_200 or counts.other or any(result.socket_errors.values()):
        raise BenchError(
            f"wrk saw {result.non_2xx} non-2xx responses ({counts.non_200} not 200, {counts.other} 200s without "
            f"a PaymentIntent) and socket errors {result.socket_errors}:\n{done.stdout}"
        )
    if (
        counts.created != result.requests
        or not counts.created <= counts.sent <= counts.created + connections + 1
    ):
        raise BenchError(f"replicas.lua counted {counts} for the {result.requests} responses wrk counted")
    return result, counts


def check_created(what: str, before: OrderCounts, after: OrderCounts, counts: LuaCounts) -> int:
    """The orders with a PaymentIntent a wrk run added: at least its 200s, at most its requests. Returns them."""
    added = after.with_intent - before.with_intent
    if not counts.created <= added <= counts.sent:
        raise BenchError(
            f"{what}: {added} orders got a PaymentIntent for {counts.created} answered creates "
            f"({counts.sent} sent)"
        )
    return added


# -- one measurement -------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    config: str
    round: int
    requests_per_second: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    cpu_s: dict[str, float]
    """CPU seconds over the measurement: emulator, replica-N, postgres, nginx, wrk, kernel, other, machine (all
    busy)."""
    checks: dict[str, int] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    """createPaymentIntent access-log lines per replica (probe and warm-up included)."""

    @property
    def p50(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99(self) -> float:
        return self.latency_ms["99"]

    def replica_cpu_per_create(self) -> float:
        """Milliseconds of CPU the replicas used (together) per create answered."""
        used = sum(v for k, v in self.cpu_s.items() if k.startswith("replica-"))
        return 1000 * used / self.requests if self.requests else 0.0

    def core_share(self, group: str) -> float:
        """CPU of `group` over the measurement, as a share of one core."""
        return self.cpu_s.get(group, 0.0) / self.seconds


_SERVED_LINE: Final = (
    b'"event":"payment_request_completed"',
    b'"statusCode":200,',
    f'"path":"{CREATE}"'.encode(),
)
"""The parts of a replica's log line for a createPaymentIntent it answered 200."""


def _served(replica_dir: Path) -> int:
    lines = 0
    for log in replica_dir.glob("gateway-*.log"):
        with log.open("rb") as file:
            lines += sum(1 for line in file if all(part in line for part in _SERVED_LINE))
    return lines


def measure(
    config: Config,
    round_number: int,
    workdir: Path,
    emulator: StripeEmulator,
    runner: asyncio.Runner,
    token: str,
    args: argparse.Namespace,
) -> Measurement:
    emulator_pid = emulator._process.pid if emulator._process is not None else 0
    directory = workdir / f"round-{round_number}-{config.key}"
    directory.mkdir()
    emulator.reset()
    with deployment(config, directory, emulator, runner) as dep:
        probe(dep, token)
        start = settle(dep, runner)
        checks = {"orders_before_warmup": start.with_intent}
        if args.warmup > 0:
            _, warmup = run_wrk(dep, token, args.warmup, args.connections)
            warmed = settle(dep, runner)
            checks["warmup_created"] = check_created("warm-up", start, warmed, warmup)
            start = warmed
        before = cpu_snapshot(dep, emulator_pid)
        result, counts = run_wrk(dep, token, args.duration, args.connections)
        after = cpu_snapshot(dep, emulator_pid)
        end = settle(dep, runner)
        checks["answered_200"] = counts.created
        checks["sent"] = counts.sent
        checks["created_in_store"] = check_created("measurement", start, end, counts)
        checks |= verify_emulator(dep, runner, emulator)
        if checks["orders_without_intent"] > args.connections:
            raise BenchError(f"{checks['orders_without_intent']} orders were left without a PaymentIntent")
    served = {f"replica-{n}": _served(directory / f"replica-{n}") for n in range(1, config.replicas + 1)}
    if min(served.values()) == 0:
        raise BenchError(f"{config.key}: a replica served no createPaymentIntent: {served}")
    return Measurement(
        config.key,
        round_number,
        result.requests_per_second,
        result.requests,
        result.seconds,
        result.latency_ms,
        cpu_used(before, after),
        checks,
        served,
    )


# -- summary ---------------------------------------------------------------------------------------------------

_ONE_PROCESS: Final = ("emulator", "replica-1", "replica-2")


def bottleneck(run: Measurement, cpus: int) -> str:
    """The saturated resource, if the CPU figures show one: the machine, or one single-process server."""
    busy = run.core_share("machine")
    top = max(
        (g for g in run.cpu_s if g not in ("machine", "other", "kernel")),
        key=run.core_share,
    )
    if busy >= SATURATED * cpus:
        return f"the machine ({100 * busy:.0f} % of {100 * cpus} %; most: {top} {100 * run.core_share(top):.0f} %)"
    saturated = [g for g in _ONE_PROCESS if run.core_share(g) >= SATURATED]
    if saturated:
        return ", ".join(f"{g} ({100 * run.core_share(g):.0f} % of its core)" for g in saturated)
    return f"none clear (most: {top} {100 * run.core_share(top):.0f} %)"


def medians(runs: list[Measurement]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for config in CONFIGS:
        mine = [run for run in runs if run.config == config.key]
        if not mine:
            continue
        groups = sorted({g for run in mine for g in run.cpu_s})
        found[config.key] = {
            "requests_per_second": statistics.median(run.requests_per_second for run in mine),
            "p50_ms": statistics.median(run.p50 for run in mine),
            "p99_ms": statistics.median(run.p99 for run in mine),
            "core_share": {g: round(statistics.median(run.core_share(g) for run in mine), 3) for g in groups},
            "replica_cpu_ms_per_create": round(
                statistics.median(run.replica_cpu_per_create() for run in mine), 3
            ),
        }
    return found


# -- report ----------------------------------------------------------------------------------------------------


async def _postgres_version() -> str:
    conn = await asyncpg.connect(postgres_url(), timeout=5)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version.split()[0]
    finally:
        await conn.close()


def versions(runner: asyncio.Runner) -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for package in ("aiohttp", "msgspec", "aiosqlite", "asyncpg", "stripe", "localstripe"):
        found[package] = importlib.metadata.version(package)
    found["SQLite"] = sqlite3.sqlite_version
    found["PostgreSQL"] = runner.run(_postgres_version())
    found["nginx"] = command_output([nginx_binary(), "-v"]).removeprefix("nginx version: nginx/")
    found["wrk"] = command_output(["wrk", "--version"]).split(" [")[0].removeprefix("wrk ")
    return found


_CPU_GROUPS: Final = ("emulator", "replica-1", "replica-2", "postgres", "nginx", "wrk", "kernel", "other")


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{round(100 * share):d} %"  # round(): no "-0 %"


def render(report: dict[str, Any], runs: list[Measurement]) -> str:
    cpus = int(report["machine"]["nproc"]) if report["machine"]["nproc"].isdigit() else os.cpu_count() or 1
    titles = {config.key: config.title for config in CONFIGS}
    summary = report["medians"]
    lines = [
        START_MARKER,
        "",
        "_Written by `bench/replicas.py`; do not edit by hand._",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}` (from the repository root)",
        f"- load: {report['rounds']} rounds of the three configurations in turn, each {report['duration_s']} s "
        f"after a {report['warmup_s']} s warm-up, `wrk -t1 -c{report['connections']}` through nginx; nothing pinned",
        f"- machine: `nproc` = {report['machine']['nproc']}, {report['machine']['cpu']}, "
        f"Linux {report['machine']['kernel']}, load average at start {report['machine']['load_average_at_start']}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in report["versions"].items()),
        f"- checked: {report['orders_checked']:,} orders created and matched one-to-one with the emulator's "
        "PaymentIntents; no non-2xx answer, no socket error",
    ]
    noisy = max(run.core_share("other") for run in runs) / cpus
    lines.append(
        f"- `other` (processes not listed: this script, anything else on the machine) used up to "
        f"{100 * noisy:.0f} % of the machine's CPU during a measurement"
    )
    caveats = []
    if report["duration_s"] < DEFAULT_DURATION:
        caveats.append(f"a short run ({report['duration_s']} s per measurement)")
    if noisy > NOISE_LIMIT:
        caveats.append("a busy machine")
    if caveats:
        lines += ["", f"**Orientation only: {' and '.join(caveats)}.**"]
    base = summary.get("sqlite-1", {}).get("requests_per_second")
    lines += [
        "",
        "| configuration | req/s (median) | p50 | p99 | vs 1 replica on SQLite |",
        "|---|--:|--:|--:|--:|",
    ]
    for key, values in summary.items():
        ratio = f"{values['requests_per_second'] / base:.2f}x" if base else "n/a"
        lines.append(
            f"| {titles[key]} | {values['requests_per_second']:,.0f} | {values['p50_ms']:.1f} ms "
            f"| {values['p99_ms']:.1f} ms | {ratio} |"
        )
    lines += [
        "",
        "Per measurement, in the order run:",
        "",
        "| round | configuration | req/s | p50 | p99 | orders created | `other` CPU | bottleneck |",
        "|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.round} | {titles[run.config]} | {run.requests_per_second:,.0f} | {run.p50:.1f} ms "
            f"| {run.p99:.1f} ms | {run.checks['created_in_store']:,} | {_pct(run.core_share('other'))} "
            f"| {bottleneck(run, cpus)} |"
        )
    lines += [
        "",
        f"CPU over the measurement, median of the rounds, in % of one core (the machine has {cpus}: "
        f"{100 * cpus} % in all):",
        "",
        "| configuration | " + " | ".join(_CPU_GROUPS) + " | machine busy | replicas' CPU per create |",
        "|---|" + "--:|" * (len(_CPU_GROUPS) + 2),
    ]
    for key, values in summary.items():
        shares = values["core_share"]
        lines.append(
            f"| {titles[key]} | "
            + " | ".join(_pct(shares.get(group)) for group in _CPU_GROUPS)
            + f" | {_pct(shares.get('machine'))} | {values['replica_cpu_ms_per_create']:.2f} ms |"
        )
    lines += ["", END_MARKER]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------------------


def preflight(runner: asyncio.Runner) -> None:
    for tool in ("wrk", "pgrep"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed: run `bash bench/setup`")
    nginx_binary()
    try:
        runner.run(_postgres_version())
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchError(f"no PostgreSQL at {postgres_url()}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=DEFAULT_DURATION, help="seconds per measurement (default 10)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of the three configurations (default 2)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (stores, logs)")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("duration, connections and rounds must be positive, warm-up at least 0")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-replicas-bench-"))
    runs: list[Measurement] = []
    try:
        with asyncio.Runner() as runner:
            preflight(runner)
            RESULTS.mkdir(exist_ok=True)
            report: dict[str, Any] = {
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "command": command_line(),
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "rounds": args.rounds,
                "machine": machine(),
                "versions": versions(runner),
            }
            token = token_for(USER)
            with start_emulator() as emulator:
                for round_number in range(1, args.rounds + 1):
                    for config in CONFIGS:
                        say(
                            f"round {round_number}, {config.key}: warm-up {args.warmup} s, then {args.duration} s"
                        )
                        run = measure(config, round_number, workdir, emulator, runner, token, args)
                        runs.append(run)
                        say(
                            f"round {round_number}, {config.key}: {run.requests_per_second:,.0f} req/s, "
                            f"p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms; CPU (% of a core): "
                            + ", ".join(
                                f"{g} {100 * run.core_share(g):.0f}" for g in run.cpu_s if g != "machine"
                            )
                        )
    except (BenchError, pytest.fail.Exception, pytest.skip.Exception) as error:
        say(f"failed: {error}")
        say(f"the temporary directory is kept for inspection (remove it when done): {workdir}")
        return 1
    if args.keep:
        say(f"temporary directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    report["orders_checked"] = sum(run.checks["orders_in_store"] for run in runs)
    report["medians"] = medians(runs)
    report["runs"] = [{**asdict(run), "p50_ms": run.p50, "p99_ms": run.p99} for run in runs]
    section = render(report, runs)
    print(section)
    (RESULTS / "replicas.json").write_text(json.dumps(report, indent=2) + "\n")
    rewrite_readme(section, START_MARKER, END_MARKER)
    say("results written to bench/README.md and bench/results/replicas.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
