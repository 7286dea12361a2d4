"""The four metrics endpoints end to end: traffic made by the real @trpc/client (v11, from npm) against the gateway
serving the production router on a real port, the local Stripe emulator process (which also delivers the webhooks)
and a real SQLite file; then what `/metrics/payments`, `/detailed`, `/prometheus` and `/health` answer about it,
field by field and figure by figure.

Every test starts a fresh gateway, so its figures are exactly the traffic the test made.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.http.app import SERVICES
from gateway.metrics.catalogue import CATALOGUE, Kind, MetricSpec
from gateway.payments import PAYMENTS
from gateway.services import Services
from gateway.store import open_store
from tests.e2e.test_payments import ADMIN, Payments, error_of
from tests.e2e.test_webhooks import eventually
from tests.support.payment_settings import payment_settings
from tests.support.server import running_gateway
from tests.support.stripe_emulator import StripeEmulator

pytestmark = pytest.mark.node

SUMMARY = "/metrics/payments"
DETAILED = "/metrics/payments/detailed"
PROMETHEUS = "/metrics/payments/prometheus"
HEALTH = "/metrics/payments/health"
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECONDS_3 = re.compile(r"^\d+\.\d{3}s$")
WEBHOOK_ID = "metrics-e2e"
APPLIED_TYPES = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"]
"""The events the emulator delivers to the gateway (unless a test registers more), so that the webhook figures are
exactly known: the payment outcomes the gateway applies. charge.refunded is left out: a refund made through the
gateway is not counted from it (see `test_a_refund_made_through_the_gateway_counts_as_a_refunded_outcome`)."""


def parse_iso(value: str) -> datetime.datetime:
    assert ISO_MS_Z.match(value), value
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Shop:
    """A gateway with payment services, the emulator delivering its webhooks, and an HTTP client for the metrics."""

    payments: Payments
    http: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return self.payments.gateway.base_url

    async def get(self, path: str) -> tuple[int, str, bytes]:
        async with self.http.get(self.base_url + path) as response:
            return response.status, response.headers["content-type"], await response.read()

    async def json(self, path: str, status: int = 200) -> Any:
        code, content_type, body = await self.get(path)
        assert code == status, (path, code, body[:500])
        assert content_type.startswith("application/json"), content_type
        return json.loads(body)

    async def webhook_outcomes(self) -> dict[str, dict[str, int]]:
        by_type: dict[str, dict[str, int]] = (await self.json(DETAILED))["sinceStart"]["webhooks"]["byType"]
        return by_type


@pytest.fixture
async def shop(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Shop]:
    settings = payment_settings(fresh_stripe_emulator, tmp_path / "gateway.sqlite3")
    async with running_gateway(settings) as gateway:
        fresh_stripe_emulator.register_webhook(
            WEBHOOK_ID, f"{gateway.base_url}/webhooks/stripe", events=APPLIED_TYPES
        )
        store = await open_store(settings.database_url)
        try:
            async with aiohttp.ClientSession() as http:
                yield Shop(Payments(gateway, settings, fresh_stripe_emulator, store), http)
        finally:
            fresh_stripe_emulator.unregister_webhook(WEBHOOK_ID)
            await store.close()


async def known_mix(payments: Payments) -> None:
    """Seven payment requests (stripe.* calls): four OK, three failing, five of them batched.

    | call | link | code |
    |---|---|---|
    | createPaymentIntent m-1 | httpBatchLink (the two mutations in one POST) | OK |
    | createPaymentIntent, amount 0 | httpBatchLink | BAD_REQUEST |
    | getConfig | httpBatchLink (the two queries in one GET) | OK |
    | getPaymentStatus of an unknown order | httpBatchLink | NOT_FOUND |
    | getConfig | httpLink | OK |
    | getPaymentStatus m-1 | httpLink | OK |
    | cancelPaymentIntent of an unknown order | httpLink | NOT_FOUND |
    """
    created, invalid, config, unknown = await payments.calls(
        [
            ("createPaymentIntent", {"orderId": "m-1", "amount": 2500, "currency": "eur"}, True),
            ("createPaymentIntent", {"orderId": "m-2", "amount": 0, "currency": "eur"}, True),
            ("getConfig", None, False),
            ("getPaymentStatus", {"orderId": "no-such-order"}, False),
        ]
    )
    assert created["ok"], created
    assert config["ok"], config
    assert error_of(invalid)["code"] == "BAD_REQUEST"
    assert error_of(unknown)["code"] == "NOT_FOUND"
    config, status, cancel = await payments.calls(
        [
            ("getConfig", None, False),
            ("getPaymentStatus", {"orderId": "m-1"}, False),
            ("cancelPaymentIntent", {"orderId": "no-such-order"}, True),
        ],
        link="httpLink",
    )
    assert config["ok"], config
    assert status["ok"], status
    assert error_of(cancel)["code"] == "NOT_FOUND"


# -- GET /metrics/payments ---------------------------------------------------------------------------------------


async def test_the_summary_without_traffic_is_all_zeros_in_the_seed_format(shop: Shop) -> None:
    started = datetime.datetime.now(datetime.UTC)
    status, content_type, raw = await shop.get(SUMMARY)

    assert status == 200
    assert content_type.startswith("application/json")
    summary = json.loads(raw)
    assert list(summary) == [  # the seed's keys, in the seed's order
        "totalPayments",
        "successCount",
        "failureCount",
        "successRate",
        "averageResponseTime",
        "lastUpdated",
    ]
    last_updated = summary.pop("lastUpdated")
    assert summary == {
        "totalPayments": 0,
        "successCount": 0,
        "failureCount": 0,
        "successRate": "0.00%",
        "averageResponseTime": "0.000s",
    }
    # Before any payment request, lastUpdated is when the gateway started.
    assert last_updated == (await shop.json(DETAILED))["startedAt"]
    assert abs(parse_iso(last_updated) - started) < datetime.timedelta(seconds=30)


async def test_the_summary_counts_each_stripe_call_by_outcome(shop: Shop) -> None:
    before = await shop.json(SUMMARY)

    await known_mix(shop.payments)
    summary = await shop.json(SUMMARY)

    assert list(summary) == list(before)
    assert (summary["totalPayments"], summary["successCount"], summary["failureCount"]) == (7, 4, 3)
    assert summary["successRate"] == "57.14%"  # 4 / 7
    assert SECONDS_3.match(summary["averageResponseTime"]), summary
    assert 0 < float(summary["averageResponseTime"][:-1]) < 2.0
    assert parse_iso(summary["lastUpdated"]) > parse_iso(before["lastUpdated"])
    assert parse_iso(summary["lastUpdated"]) <= datetime.datetime.now(datetime.UTC)
    # Metrics requests are not payment requests: asking again changes nothing.
    assert await shop.json(SUMMARY) == summary
    # The detailed report's payment figures are the same, over both windows.
    detailed = await shop.json(DETAILED)
    del summary["lastUpdated"]
    assert detailed["sinceStart"]["payments"] == summary
    assert detailed["lastHour"]["payments"] == summary


# -- GET /metrics/payments/detailed ------------------------------------------------------------------------------


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {key: n for key, n in counts.items() if n}


def without_zeros(value: Any) -> Any:
    """A report with its zero counts and never-called entries left out (and its mean latencies, which are sums
    added up in another order over each window)."""
    if isinstance(value, dict):
        return {
            key: without_zeros(v)
            for key, v in value.items()
            if v != 0 and key != "mean" and not (isinstance(v, dict) and v.get("calls") == 0)
        }
    return value


def assert_latency(latency: dict[str, Any]) -> None:
    assert list(latency) == ["p50", "p95", "p99", "mean", "max"], latency
    assert all(isinstance(value, float | int) for value in latency.values()), latency
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"], latency
    assert 0 < latency["mean"] <= latency["max"], latency


async def test_the_detailed_report_breaks_calls_down_by_procedure_code_transport_and_stripe_operation(
    shop: Shop,
) -> None:
    await known_mix(shop.payments)
    assert await shop.payments.pay("m-1") == "succeeded"  # at (emulated) Stripe, as the phone would

    async def succeeded_applied() -> dict[str, dict[str, int]] | None:
        by_type = await shop.webhook_outcomes()
        return by_type if by_type.get("payment_intent.succeeded", {}).get("applied") else None

    await eventually(succeeded_applied, "the payment_intent.succeeded webhook to be applied")
    refund = await shop.payments.call(
        "refund", {"orderId": "m-1", "amount": 1000}, mutation=True, headers=ADMIN
    )
    assert refund["ok"], refund
    report = await shop.json(DETAILED)

    for field in (
        "generatedAt",
        "startedAt",
        "lastPaymentSucceededAt",
        "lastStripeSuccessAt",
        "lastWebhookAt",
    ):
        parse_iso(report[field])
    assert parse_iso(report["startedAt"]) < parse_iso(report["lastPaymentSucceededAt"])
    assert parse_iso(report["lastPaymentSucceededAt"]) <= parse_iso(report["generatedAt"])
    assert report["stripeConsecutiveErrors"] == 0
    for window in ("sinceStart", "lastHour"):  # everything happened within the hour: the same figures
        figures = report[window]
        assert figures["payments"] == {
            "totalPayments": 8,
            "successCount": 5,
            "failureCount": 3,
            "successRate": "62.50%",
            "averageResponseTime": figures["payments"]["averageResponseTime"],
        }, window
        # Procedures are declared with zero OK calls before their first one (for Prometheus's rate()): only the
        # figures that are not zero are the traffic's.
        procedures = {name: entry for name, entry in figures["procedures"].items() if entry["calls"]}
        expected = {
            # procedure: (type, byCode, byTransport)
            "stripe.createPaymentIntent": ("mutation", {"OK": 1, "BAD_REQUEST": 1}, {"http_batch": 2}),
            "stripe.getConfig": ("query", {"OK": 2}, {"http_batch": 1, "http": 1}),
            "stripe.getPaymentStatus": ("query", {"OK": 1, "NOT_FOUND": 1}, {"http_batch": 1, "http": 1}),
            "stripe.cancelPaymentIntent": ("mutation", {"NOT_FOUND": 1}, {"http": 1}),
            "stripe.refund": ("mutation", {"OK": 1}, {"http_batch": 1}),
        }
        assert set(procedures) == set(expected), window
        for procedure, (kind, by_code, by_transport) in expected.items():
            entry = procedures[procedure]
            assert entry["type"] == kind, (window, procedure)
            assert nonzero(entry["byCode"]) == by_code, (window, procedure, entry)
            assert nonzero(entry["byTransport"]) == by_transport, (window, procedure, entry)
            assert entry["calls"] == sum(by_code.values()), (window, procedure)
            assert_latency(entry["latencySeconds"])
        # Batches: the mutations' POST and the queries' GET of the first round (two calls each), the refund alone.
        assert figures["batches"] == {"http_batch": {"requests": 3, "meanCalls": 1.666667, "maxCalls": 2}}

        stripe = figures["stripe"]
        operations = stripe["byOperation"]
        for operation in ("payment_intents.create", "refunds.create"):
            assert operations[operation]["byOutcome"] == {"ok": 1}, (window, operation, operations)
        for operation, entry in operations.items():
            assert set(entry["byOutcome"]) == {"ok"}, (window, operation, entry)
            assert entry["calls"] == entry["byOutcome"]["ok"], (window, operation)
            assert_latency(entry["latencySeconds"])
        assert (stripe["errors"], stripe["errorsByKind"]) == (0, {})
        assert stripe["calls"] == sum(entry["calls"] for entry in operations.values())

        webhooks = figures["webhooks"]
        assert webhooks["byType"] == {"payment_intent.succeeded": {"applied": 1}}, window
        assert (webhooks["deliveries"], webhooks["byOutcome"]) == (1, {"applied": 1}), window
        assert_latency(webhooks["lagSeconds"])
        assert webhooks["lagSeconds"]["max"] < 60  # the emulator sends each event about a second after it

        outcomes = figures["paymentOutcomes"]
        assert list(outcomes) == ["succeeded", "failed", "canceled", "refunded"], window
        assert outcomes["succeeded"] == {"eur": {"count": 1, "amount": 2500}}, window
        assert (outcomes["failed"], outcomes["canceled"]) == ({}, {}), window

        http = figures["http"]
        assert http["requests"] == sum(http["byStatus"].values()) == sum(http["byRoute"].values())
        assert http["byRoute"]["webhooks"] == 1, window
        assert http["byRoute"]["trpc"] == 6, window  # 2 batched requests, 3 single calls, the refund
    assert without_zeros(report["sinceStart"]) == without_zeros(report["lastHour"])


async def test_a_refund_made_through_the_gateway_counts_as_a_refunded_outcome(shop: Shop) -> None:
    shop.payments.emulator.register_webhook(WEBHOOK_ID, f"{shop.base_url}/webhooks/stripe")  # every event
    await shop.payments.create("r-1", 2500)
    assert await shop.payments.pay("r-1") == "succeeded"

    async def applied(event_type: str) -> dict[str, dict[str, int]] | None:
        by_type = await shop.webhook_outcomes()
        return by_type if by_type.get(event_type, {}).get("applied") else None

    await eventually(lambda: applied("payment_intent.succeeded"), "the payment's webhook")
    refund = await shop.payments.call(
        "refund", {"orderId": "r-1", "amount": 1000}, mutation=True, headers=ADMIN
    )
    assert refund["ok"], refund
    await eventually(lambda: applied("charge.refunded"), "the refund's webhook")

    outcomes = (await shop.json(DETAILED))["sinceStart"]["paymentOutcomes"]
    assert outcomes["refunded"] == {"eur": {"count": 1, "amount": 1000}}


# -- GET /metrics/payments/prometheus ----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)",?')
Labels = frozenset[tuple[str, str]]


@dataclass
class Exposition:
    helps: dict[str, list[str]]
    types: dict[str, list[str]]
    samples: list[tuple[str, dict[str, str], float]]

    def values(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for sample, labels, value in self.samples if sample == name]

    def value(self, name: str, **labels: str) -> float:
        [value] = [v for found, v in self.values(name) if found == labels] or [math.nan]
        return value


def parse_exposition(text: str) -> Exposition:
    """Prometheus's text format 0.0.4, strictly: every line a comment or a sample, nothing else."""
    helps: dict[str, list[str]] = defaultdict(list)
    types: dict[str, list[str]] = defaultdict(list)
    samples = []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            helps[name].append(help_text)
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            types[name].append(kind)
        else:
            match = _SAMPLE.match(line)
            assert match is not None, f"not a sample: {line!r}"
            raw_labels = match["labels"] or ""
            labels = {m["name"]: m["value"] for m in _LABEL.finditer(raw_labels)}
            assert "".join(m.group(0) for m in _LABEL.finditer(raw_labels)) == raw_labels, line
            samples.append((match["name"], labels, float(match["value"])))
    return Exposition(dict(helps), dict(types), samples)


def _family(sample: str) -> MetricSpec:
    for spec in CATALOGUE:
        suffixes = ("_bucket", "_sum", "_count") if spec.kind is Kind.HISTOGRAM else ("",)
        if any(sample == spec.name + suffix for suffix in suffixes):
            return spec
    raise AssertionError(f"{sample} is not a series of gateway.metrics.catalogue")


async def scrape(shop: Shop) -> tuple[str, str]:
    status, content_type, body = await shop.get(PROMETHEUS)
    assert status == 200
    return content_type, body.decode()


async def test_the_prometheus_exposition_names_every_catalogued_metric_with_consistent_samples(
    shop: Shop,
) -> None:
    await known_mix(shop.payments)
    status, _, _ = await shop.get(HEALTH)  # the health gauges show the last verdicts
    assert status == 200
    summary = await shop.json(SUMMARY)

    content_type, text = await scrape(shop)

    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    exposition = parse_exposition(text)
    for spec in CATALOGUE:
        assert exposition.helps.get(spec.name) == [spec.help], spec.name
        assert exposition.types.get(spec.name) == [spec.kind.value], spec.name
        if spec.kind is Kind.COUNTER:
            assert spec.name.endswith("_total"), spec.name
        else:
            assert not spec.name.endswith("_total"), spec.name
    assert set(exposition.helps) == set(exposition.types) == {spec.name for spec in CATALOGUE}

    for sample, labels, value in exposition.samples:
        spec = _family(sample)
        expected_labels = set(spec.labels) | ({"le"} if sample.endswith("_bucket") else set())
        assert set(labels) == expected_labels, (sample, labels)
        assert value >= 0, (sample, labels, value)

    calls = "gateway_procedure_calls_total"
    create = {"procedure": "stripe.createPaymentIntent", "type": "mutation", "transport": "http_batch"}
    assert exposition.value(calls, **create, code="OK") == 1
    assert exposition.value(calls, **create, code="BAD_REQUEST") == 1
    get_config = {"procedure": "stripe.getConfig", "type": "query"}
    assert exposition.value(calls, **get_config, transport="http", code="OK") == 1
    assert exposition.value(calls, **get_config, transport="http_batch", code="OK") == 1
    payment_calls = [
        (labels, n) for labels, n in exposition.values(calls) if labels["procedure"].startswith("stripe.")
    ]
    assert sum(n for _, n in payment_calls) == summary["totalPayments"] == 7
    assert sum(n for labels, n in payment_calls if labels["code"] == "OK") == summary["successCount"]

    # Histograms: per series, cumulative buckets at the catalogue's bounds, +Inf last and equal to _count.
    histograms = [spec for spec in CATALOGUE if spec.kind is Kind.HISTOGRAM]
    series_seen = 0
    for spec in histograms:
        buckets: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
        for labels, value in exposition.values(spec.name + "_bucket"):
            le = labels.pop("le")
            buckets[frozenset(labels.items())].append((float(le), value))
        counts = {
            frozenset(labels.items()): value for labels, value in exposition.values(spec.name + "_count")
        }
        sums = {frozenset(labels.items()): value for labels, value in exposition.values(spec.name + "_sum")}
        assert set(buckets) == set(counts) == set(sums), spec.name
        for series, points in buckets.items():
            bounds = [bound for bound, _ in points]
            assert bounds == [*spec.buckets, math.inf], (spec.name, series)
            cumulative = [n for _, n in points]
            assert cumulative == sorted(cumulative), (spec.name, series, cumulative)
            assert cumulative[-1] == counts[series] > 0, (spec.name, series)
            assert sums[series] >= 0, (spec.name, series)
            series_seen += 1
    assert series_seen > 0

    # The duration histogram counts every call the counter counts, series by series.
    durations = "gateway_procedure_call_duration_seconds"
    totals: dict[Labels, float] = defaultdict(float)
    for labels, n in exposition.values(calls):
        del labels["code"]
        totals[frozenset(labels.items())] += n
    observed = {
        series: n for series, n in totals.items() if n
    }  # series declared at zero have no durations yet
    assert observed == {frozenset(labels.items()): n for labels, n in exposition.values(durations + "_count")}
    # ... and the seed summary's mean is that histogram's mean over the stripe.* series.
    seconds = sum(
        v for labels, v in exposition.values(durations + "_sum") if labels["procedure"].startswith("stripe.")
    )
    count = sum(
        v
        for labels, v in exposition.values(durations + "_count")
        if labels["procedure"].startswith("stripe.")
    )
    assert f"{seconds / count:.3f}s" == summary["averageResponseTime"]

    assert exposition.values("gateway_info")[0][1] == 1
    assert exposition.values("gateway_info")[0][0]["stripe_mode"] == "test"
    health = {labels["check"]: value for labels, value in exposition.values("gateway_health_check_status")}
    assert health["store"] == health["stripe"] == health["configuration"] == 1, health
    assert exposition.value("gateway_stripe_consecutive_errors") == 0
    start = exposition.value("gateway_start_time_seconds")
    assert start <= exposition.value("gateway_last_payment_request_success_timestamp_seconds")
    assert start < exposition.value("gateway_last_stripe_success_timestamp_seconds")


async def test_the_prometheus_exposition_passes_promtool_check_metrics(shop: Shop) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not on PATH: run `bash scripts/setup-prometheus` (it installs Debian's prometheus "
            "package), then run this test again",
            pytrace=False,
        )
    await known_mix(shop.payments)
    status, _, _ = await shop.get(HEALTH)
    assert status == 200
    _, text = await scrape(shop)

    done = subprocess.run(  # noqa: ASYNC221 - a local tool that answers in milliseconds
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, f"promtool check metrics failed:\n{done.stdout}{done.stderr}\n---\n{text}"


# -- GET /metrics/payments/health --------------------------------------------------------------------------------

CHECKS = [
    "store",
    "stripe",
    "configuration",
    "maintenance",
    "paymentFailureRate",
    "responseTime",
    "recentPayment",
]


def check_statuses(body: dict[str, Any]) -> dict[str, str]:
    checks: dict[str, dict[str, Any]] = body["checks"]
    assert set(checks) == set(CHECKS), list(checks)
    statuses = {name: check["status"] for name, check in checks.items()}
    assert set(statuses.values()) <= {"pass", "warn", "fail"}, statuses
    return statuses


async def test_health_reports_each_check_and_polling_it_never_calls_stripe(shop: Shop) -> None:
    fresh = await shop.json(HEALTH)
    assert fresh["status"] == "healthy"
    assert check_statuses(fresh) == dict.fromkeys(CHECKS, "pass")
    parse_iso(fresh["timestamp"])

    await known_mix(shop.payments)  # three failures in seven: above the seed's 5 % alert, a warning only
    body = await shop.json(HEALTH)

    assert body["status"] == "degraded"
    assert check_statuses(body) == {**dict.fromkeys(CHECKS, "pass"), "paymentFailureRate": "warn"}
    rate = body["checks"]["paymentFailureRate"]
    assert (rate["value"], rate["threshold"], rate["payments"]) == ("42.86%", "5.00%", 7)
    assert SECONDS_3.match(body["checks"]["responseTime"]["value"])
    assert body["checks"]["stripe"]["consecutiveErrors"] == 0

    stripe_before = (await shop.json(DETAILED))["sinceStart"]["stripe"]
    last_call_before = body["checks"]["stripe"]["lastCallAt"]
    assert stripe_before["calls"] > 0
    for _ in range(20):
        probe = await shop.json(HEALTH)
        assert probe["status"] == "degraded"
        assert probe["checks"]["stripe"]["lastCallAt"] == last_call_before
    stripe_after = (await shop.json(DETAILED))["sinceStart"]["stripe"]

    assert stripe_after == stripe_before  # 20 probes, not one Stripe call


async def test_a_store_that_does_not_answer_makes_the_gateway_unhealthy_503(shop: Shop) -> None:
    assert (await shop.json(HEALTH))["checks"]["store"]["status"] == "pass"
    services: Services = shop.payments.gateway.app[SERVICES]
    await services[PAYMENTS]._store.close()  # the gateway's own connection: every later query fails

    body = await shop.json(HEALTH, status=503)

    assert body["status"] == "unhealthy"
    assert check_statuses(body)["store"] == "fail"
    assert body["checks"]["store"]["error"]
    assert check_statuses(body)["configuration"] == "pass"
    # The gauge a Prometheus alert reads says so too; the other endpoints read memory only and still answer.
    _, text = await scrape(shop)
    exposition = parse_exposition(text)
    assert exposition.value("gateway_health_check_status", check="store") == 0
    assert exposition.value("gateway_health_check_status", check="configuration") == 1
    assert (await shop.json(SUMMARY))["totalPayments"] == 0
    await shop.json(DETAILED)
