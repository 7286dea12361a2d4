"""`GET /metrics/payments/prometheus`: the figures of `Metrics` as a Prometheus text exposition, by aioprometheus.

The figures live in `Metrics` (cheap to record on the hot path); at each scrape they are copied into a fresh
aioprometheus registry and rendered. A scrape reads memory only: no store, no Stripe, nothing to wait for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Final

from aioprometheus.collectors import Collector, Counter, Gauge, Histogram, Registry
from aioprometheus.formats.text import TEXT_CONTENT_TYPE, TextFormatter
from aioprometheus.histogram import Histogram as Buckets

from gateway.metrics import catalogue as c
from gateway.metrics.catalogue import Kind, MetricSpec
from gateway.metrics.histogram import Histogram as Observations
from gateway.metrics.recorder import Metrics

__all__ = ["CONTENT_TYPE", "exposition"]

CONTENT_TYPE: Final = TEXT_CONTENT_TYPE
_COLLECTORS: Final[Mapping[Kind, type[Collector]]] = {
    Kind.COUNTER: Counter,
    Kind.GAUGE: Gauge,
    Kind.HISTOGRAM: Histogram,
}


def _label_value(value: str) -> str:
    # aioprometheus writes label values as given: escape what the text format requires.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(spec: MetricSpec, values: tuple[str, ...]) -> dict[str, str]:
    return {name: _label_value(value) for name, value in zip(spec.labels, values, strict=True)}


def _buckets(observations: Observations) -> Buckets:
    buckets = Buckets(*observations.bounds)
    buckets.buckets = OrderedDict(observations.cumulative())
    buckets.observations = observations.count
    buckets.sum = observations.sum
    return buckets


def exposition(
    metrics: Metrics,
    health: Mapping[str, bool],
    *,
    version: str,
    stripe_mode: str,
    maintenance: bool | None = None,
) -> bytes:
    """The whole exposition; `health` is each health check's verdict (True: not failing); `maintenance` the switch
    as last read (None: no switch in this application)."""
    registry = Registry()
    collectors = {
        spec.name: _COLLECTORS[spec.kind](spec.name, spec.help, registry=registry) for spec in c.CATALOGUE
    }

    def count(spec: MetricSpec, table: Iterable[tuple[tuple[str, ...], int]]) -> None:
        for key, n in table:
            collectors[spec.name].set_value(_labels(spec, key), n)

    def observed(spec: MetricSpec, table: Iterable[tuple[tuple[str, ...], Observations]]) -> None:
        for key, observations in table:
            collectors[spec.name].set_value(_labels(spec, key), _buckets(observations))

    def gauge(spec: MetricSpec, value: float, labels: tuple[str, ...] = ()) -> None:
        collectors[spec.name].set_value(_labels(spec, labels), value)

    total = metrics.since_start(fine=False)  # no percentiles here: Prometheus computes them from the buckets
    count(c.PROCEDURE_CALLS, total.calls.items())
    observed(c.PROCEDURE_DURATION, total.call_seconds.items())
    observed(c.BATCH_SIZE, (((transport,), h) for transport, h in total.batch_sizes.items()))
    count(c.HTTP_REQUESTS, (((route, str(status)), n) for (route, status), n in total.http.items()))
    observed(c.HTTP_DURATION, (((route,), h) for route, h in total.http_seconds.items()))
    count(c.STRIPE_REQUESTS, total.stripe.items())
    observed(c.STRIPE_DURATION, (((operation,), h) for operation, h in total.stripe_seconds.items()))
    gauge(c.STRIPE_CONSECUTIVE_ERRORS, metrics.stripe_consecutive_errors)
    count(c.WEBHOOK_EVENTS, total.webhooks.items())
    observed(c.WEBHOOK_LAG, (((event_type,), h) for event_type, h in total.webhook_lag.items()))
    count(c.PAYMENTS, ((key, n) for key, (n, _) in total.payments.items()))
    count(c.PAYMENT_AMOUNTS, ((key, amount) for key, (_, amount) in total.payments.items()))
    # Before the first one, the process start: "nothing for 30 minutes" then counts from the start.
    gauge(c.LAST_PAYMENT_SUCCEEDED, metrics.last_payment_succeeded_at or metrics.started_at)
    gauge(c.LAST_PAYMENT_REQUEST_OK, metrics.last_payment_request_ok_at or metrics.started_at)
    gauge(c.LAST_STRIPE_OK, metrics.last_stripe_ok_at or metrics.started_at)
    gauge(c.LAST_WEBHOOK, metrics.last_webhook_at or metrics.started_at)
    if maintenance is not None:
        gauge(c.MAINTENANCE, 1 if maintenance else 0)
    gauge(c.START_TIME, metrics.started_at)
    for check, passing in health.items():
        gauge(c.HEALTH, 1 if passing else 0, (check,))
    gauge(c.INFO, 1, (version, stripe_mode))
    return TextFormatter().marshall(registry)
