"""The metrics' arithmetic, on a clock the test moves: histograms, the last-hour window, the seed's formats, the
Prometheus exposition. The endpoints themselves, with real traffic, are in tests/e2e/test_metrics_endpoints.py."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re

import pytest

from gateway.metrics.catalogue import CATALOGUE, DURATION_BUCKETS
from gateway.metrics.histogram import FINE_BOUNDS, FOLD_EVERY, Histogram
from gateway.metrics.prometheus import exposition
from gateway.metrics.recorder import Metrics
from gateway.metrics.reports import detailed_report, payment_summary
from tests.metrics.clock import START, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(clock)


def pay(
    metrics: Metrics, code: str = "OK", seconds: float = 0.1, procedure: str = "stripe.createPaymentIntent"
) -> None:
    metrics.procedure_call(procedure, "mutation", "http", code, seconds)


def test_histogram_buckets_are_cumulative_with_prometheus_le_semantics() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        histogram.observe(value)

    assert histogram.cumulative() == [(0.1, 2), (1.0, 4), (math.inf, 5)]  # a value equal to a bound is in it
    assert (histogram.count, round(histogram.sum, 9), histogram.max) == (5, 4.65, 3.0)


def test_buffered_observations_land_in_the_same_buckets_as_one_by_one() -> None:
    """Values are bucketed a buffer at a time: every figure must equal counting each value on its own (Prometheus's
    `le`: a value on a bound is in it), whether read mid-buffer or after several folds."""
    rng = random.Random(7)
    values = [10 ** rng.uniform(-6, 6) for _ in range(FOLD_EVERY * 2 + 123)]
    values += list(DURATION_BUCKETS) + list(FINE_BOUNDS[::7]) + [0.0, -1.0]
    rng.shuffle(values)
    histogram = Histogram(DURATION_BUCKETS)
    for n, value in enumerate(values, 1):
        histogram.observe(value)
        if n in (5, FOLD_EVERY + 17):  # a reader in the middle folds early; later values still count
            assert histogram.count == n

    coarse = [0] * (len(DURATION_BUCKETS) + 1)
    fine = [0] * (len(FINE_BOUNDS) + 1)
    for value in values:
        coarse[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
        fine[bisect.bisect_left(FINE_BOUNDS, value)] += 1
    assert histogram.cumulative() == list(
        zip((*DURATION_BUCKETS, math.inf), itertools.accumulate(coarse), strict=True)
    )
    assert histogram.fine == fine
    assert (histogram.count, histogram.max) == (len(values), max(values))
    assert histogram.sum == pytest.approx(math.fsum(values), rel=1e-12)


def test_impossible_values_do_not_spoil_the_others() -> None:
    """A NaN would unsort the buffer (every other value then miscounted); an overflowing sum must not raise on the
    request path nor count the buffer twice."""
    histogram = Histogram((0.1, 1.0))
    for value in (0.3, math.nan, 0.001, 5.0, -1.0, 0.5, 0.002):
        histogram.observe(value)
    assert histogram.cumulative() == [(0.1, 3), (1.0, 5), (math.inf, 6)]
    assert histogram.count == 6

    huge = Histogram((0.1, 1.0))
    huge.observe(1e308)
    huge.observe(1e308)
    assert (huge.count, huge.count, huge.sum) == (2, 2, math.inf)
    assert huge.cumulative() == [(0.1, 0), (1.0, 0), (math.inf, 2)]


def test_merging_folds_both_sides() -> None:
    mine, theirs = Histogram((0.1, 1.0)), Histogram((0.1, 1.0))
    mine.observe(0.05)
    theirs.observe(0.5)
    theirs.observe(2.0)
    mine.merge(theirs)
    assert mine.cumulative() == [(0.1, 1), (1.0, 2), (math.inf, 3)]
    assert (mine.count, mine.max, round(mine.sum, 9)) == (3, 2.0, 2.55)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_percentiles_are_within_ten_percent(q: float) -> None:
    histogram = Histogram()
    values = [0.001 * i for i in range(1, 2001)]  # 1 ms .. 2 s
    for value in values:
        histogram.observe(value)

    exact = values[math.ceil(q * len(values)) - 1]
    estimate = histogram.quantile(q)
    assert estimate is not None
    assert exact <= estimate <= exact * 1.1


def test_percentiles_of_nothing_and_of_one_value() -> None:
    histogram = Histogram()
    assert (histogram.quantile(0.5), histogram.mean()) == (None, None)
    histogram.observe(0.234)
    assert histogram.quantile(0.99) == 0.234  # never above the largest observation


def test_a_minute_that_ends_keeps_no_values_buffered(metrics: Metrics, clock: Clock) -> None:
    """Histograms buffer their values until a fold (figures/histogram.py); a past minute's buffers are folded when
    the next minute begins, so only the current minute holds values in memory, even if nobody reads the metrics."""
    for i in range(300):
        metrics.procedure_call("stripe.getConfig", "query", "http", "OK", 0.001 * i)
        metrics.http_request("/trpc", 200, 0.002)
    metrics.batch("http_batch", 3)
    clock.now += 60
    metrics.http_request("/trpc", 200, 0.002)  # the next minute's first observation

    # White-box: what the past minutes hold is the point of the test.
    past = [figures for figures in metrics._minutes.values() if figures is not metrics._current]
    assert past
    assert all(histogram.unfolded == 0 for figures in past for histogram in figures.histograms())
    assert sum(histogram.unfolded for histogram in metrics._current.histograms()) == 1
    figures = metrics.since_start()
    assert figures.call_seconds[("stripe.getConfig", "query", "http")].count == 300
    assert figures.http_seconds["/trpc"].count == 301
    assert figures.call_seconds[("stripe.getConfig", "query", "http")].max == pytest.approx(0.299)


def test_the_seed_summary_with_its_own_example_figures(metrics: Metrics, clock: Clock) -> None:
    for i in range(150):
        pay(metrics, "OK" if i < 142 else "BAD_REQUEST", 0.234)
    metrics.procedure_call("bench.greet", "query", "http", "OK", 5.0)  # not a payment request
    clock.now += 600

    assert payment_summary(metrics) == {
        "totalPayments": 150,
        "successCount": 142,
        "failureCount": 8,
        "successRate": "94.67%",
        "averageResponseTime": "0.234s",
        "lastUpdated": "2024-01-15T09:50:00.000Z",  # when the last payment request ended
    }


def test_the_seed_summary_without_traffic(metrics: Metrics) -> None:
    assert payment_summary(metrics) == {
        "totalPayments": 0,
        "successCount": 0,
        "failureCount": 0,
        "successRate": "0.00%",
        "averageResponseTime": "0.000s",
        "lastUpdated": "2024-01-15T09:50:00.000Z",  # the process start
    }


def test_the_last_hour_forgets_older_minutes(metrics: Metrics, clock: Clock) -> None:
    pay(metrics, "INTERNAL_SERVER_ERROR")
    clock.now += 30 * 60
    pay(metrics)
    clock.now += 31 * 60  # the failure is now 61 minutes old

    report = detailed_report(metrics)

    since_start = report["sinceStart"]["procedures"]["stripe.createPaymentIntent"]  # type: ignore[index]
    last_hour = report["lastHour"]["procedures"]["stripe.createPaymentIntent"]  # type: ignore[index]
    assert since_start["byCode"] == {"INTERNAL_SERVER_ERROR": 1, "OK": 1}
    assert last_hour["byCode"] == {"OK": 1}
    assert report["lastHour"]["payments"]["successRate"] == "100.00%"  # type: ignore[index]


def test_stripe_errors_in_a_row_reset_on_any_answer(metrics: Metrics) -> None:
    for outcome in ("connection", "timeout", "api"):
        metrics.stripe_call("payment_intents.create", outcome, 1.0)
    assert metrics.stripe_consecutive_errors == 3
    metrics.stripe_call("payment_intents.create", "card", 0.2)  # a decline is an answer
    assert metrics.stripe_consecutive_errors == 0


def test_payment_outcomes_add_up_per_currency(metrics: Metrics, clock: Clock) -> None:
    metrics.payment("succeeded", "eur", 2500)
    metrics.payment("succeeded", "eur", 1000)
    metrics.payment("refunded", "eur", 500)
    clock.now += 5
    metrics.payment("succeeded", "usd", 700)

    outcomes = detailed_report(metrics)["sinceStart"]["paymentOutcomes"]  # type: ignore[index]
    assert outcomes == {
        "succeeded": {"eur": {"count": 2, "amount": 3500}, "usd": {"count": 1, "amount": 700}},
        "failed": {},
        "canceled": {},
        "refunded": {"eur": {"count": 1, "amount": 500}},
    }
    assert metrics.last_payment_succeeded_at == START + 5


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for each sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            found[series] = float(value)
    return found


def test_the_exposition_names_every_catalogued_metric_and_its_samples(metrics: Metrics) -> None:
    pay(metrics, "OK", 0.3)
    pay(metrics, "BAD_REQUEST", 0.002)
    metrics.webhook("payment_intent.succeeded", "applied")

    text = exposition(metrics, {"store": True, "stripe": False}, version="1.2.3", stripe_mode="test").decode()

    for spec in CATALOGUE:
        assert f"# HELP {spec.name} " in text
        assert f"# TYPE {spec.name} {spec.kind.value}\n" in text
        if spec.kind.value == "counter":
            assert spec.name.endswith("_total")
    found = samples(text)
    series = 'procedure="stripe.createPaymentIntent",transport="http",type="mutation"'
    assert found[f'gateway_procedure_calls_total{{code="OK",{series}}}'] == 1
    assert found[f'gateway_procedure_calls_total{{code="BAD_REQUEST",{series}}}'] == 1
    assert found[f'gateway_procedure_call_duration_seconds_bucket{{le="0.005",{series}}}'] == 1
    assert found[f'gateway_procedure_call_duration_seconds_bucket{{le="+Inf",{series}}}'] == 2
    assert found[f"gateway_procedure_call_duration_seconds_count{{{series}}}"] == 2
    assert (
        len([s for s in found if s.startswith("gateway_procedure_call_duration_seconds_bucket")])
        == len(DURATION_BUCKETS) + 1
    )
    assert found['gateway_webhook_events_total{outcome="applied",type="payment_intent.succeeded"}'] == 1
    assert found['gateway_health_check_status{check="stripe"}'] == 0
    assert found['gateway_info{stripe_mode="test",version="1.2.3"}'] == 1
    assert found["gateway_start_time_seconds"] == START


def test_label_values_are_escaped(metrics: Metrics) -> None:
    metrics.webhook('odd"type\\with\nnewline', "applied")

    text = exposition(metrics, {}, version="1", stripe_mode="test").decode()

    assert 'type="odd\\"type\\\\with\\nnewline"' in text
    assert all(re.match(r"^(#|\w+(\{.*\})? \S+$)", line) for line in text.splitlines() if line)


def test_declared_procedures_are_exposed_at_zero_before_their_first_call(metrics: Metrics) -> None:
    metrics.declare_procedure("stripe.getConfig", "query", ["http"])

    found = samples(exposition(metrics, {}, version="1", stripe_mode="test").decode())

    assert (
        found[
            'gateway_procedure_calls_total{code="OK",procedure="stripe.getConfig",transport="http",type="query"}'
        ]
        == 0
    )
    assert payment_summary(metrics)["totalPayments"] == 0
