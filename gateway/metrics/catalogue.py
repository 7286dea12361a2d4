"""Every metric `GET /metrics/payments/prometheus` exposes: name, kind, help, labels, buckets. One list, read by the
exposition, the README's table and the alerting rules' tests, so a name changes in one place.

Conventions (Prometheus's): counters end in `_total`, durations are histograms in seconds, timestamps are gauges
in Unix seconds ending in `_timestamp_seconds`. Label values are bounded: procedures are the registry's paths (an
unknown path is counted as `unknown`), routes are the gateway's route names, webhook types are Stripe's (only a
correctly signed body is counted by its type).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["CATALOGUE", "DURATION_BUCKETS", "Kind", "MetricSpec"]


class Kind(enum.StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0)
"""Request and call durations, seconds: fine where the gateway lives (ms), with 0.5 and 2 s, the seed's KPI and
alert thresholds, as exact bounds."""
BATCH_BUCKETS: Final = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
LAG_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0, 259200.0)
"""Webhook lag, seconds: from Stripe's `created` to our recording; Stripe retries for up to three days."""

PROCEDURE_CALLS: Final = MetricSpec(
    "gateway_procedure_calls_total",
    Kind.COUNTER,
    "Procedure calls by procedure, type (query or mutation), transport (http, http_batch, http_stream; jsonrpc "
    "for /rpc) and outcome code (OK or the tRPC error code). Calls of stripe.* procedures are the seed's payment requests.",
    ("procedure", "type", "transport", "code"),
)
PROCEDURE_DURATION: Final = MetricSpec(
    "gateway_procedure_call_duration_seconds",
    Kind.HISTOGRAM,
    "How long procedure calls took, from the input read to the output encoded.",
    ("procedure", "type", "transport"),
    DURATION_BUCKETS,
)
BATCH_SIZE: Final = MetricSpec(
    "gateway_batch_size_calls",
    Kind.HISTOGRAM,
    "Calls per batched tRPC request.",
    ("transport",),
    BATCH_BUCKETS,
)
HTTP_REQUESTS: Final = MetricSpec(
    "gateway_http_requests_total",
    Kind.COUNTER,
    "HTTP requests by route (trpc, rpc, webhooks, metrics, health, other) and status code.",
    ("route", "status"),
)
HTTP_DURATION: Final = MetricSpec(
    "gateway_http_request_duration_seconds",
    Kind.HISTOGRAM,
    "How long HTTP requests took, from the handler's start to the response (or the stream's end).",
    ("route",),
    DURATION_BUCKETS,
)
STRIPE_REQUESTS: Final = MetricSpec(
    "gateway_stripe_requests_total",
    Kind.COUNTER,
    "Calls to Stripe's API by operation and outcome: ok, or the failure kind (card, invalid_request, not_found, "
    "idempotency, rate_limit, connection, timeout, api, authentication).",
    ("operation", "outcome"),
)
STRIPE_DURATION: Final = MetricSpec(
    "gateway_stripe_request_duration_seconds",
    Kind.HISTOGRAM,
    "How long calls to Stripe took, network retries included.",
    ("operation",),
    DURATION_BUCKETS,
)
STRIPE_CONSECUTIVE_ERRORS: Final = MetricSpec(
    "gateway_stripe_consecutive_errors",
    Kind.GAUGE,
    "Stripe calls in a row that got no usable answer (rate_limit, connection, timeout, api, authentication); "
    "0 after any answer, a card decline included.",
)
WEBHOOK_EVENTS: Final = MetricSpec(
    "gateway_webhook_events_total",
    Kind.COUNTER,
    "Webhook deliveries by event type and outcome: applied, duplicate, ignored, failed (5xx: Stripe retries), "
    "rejected (bad signature or body; type `unknown`).",
    ("type", "outcome"),
)
WEBHOOK_LAG: Final = MetricSpec(
    "gateway_webhook_lag_seconds",
    Kind.HISTOGRAM,
    "From an event's creation at Stripe to its first recording here.",
    ("type",),
    LAG_BUCKETS,
)
PAYMENTS: Final = MetricSpec(
    "gateway_payments_total",
    Kind.COUNTER,
    "Payment outcomes applied to orders, from Stripe's webhooks or its answers to the gateway (whichever came "
    "first; never both): succeeded, failed (an order newly failed, not each decline), canceled, refunded.",
    ("outcome", "currency"),
)
PAYMENT_AMOUNTS: Final = MetricSpec(
    "gateway_payment_amount_minor_units_total",
    Kind.COUNTER,
    "Amounts of those outcomes in the currency's minor unit (cents): received, attempted, canceled, refunded.",
    ("outcome", "currency"),
)
LAST_PAYMENT_SUCCEEDED: Final = MetricSpec(
    "gateway_last_payment_succeeded_timestamp_seconds",
    Kind.GAUGE,
    "When an order last became succeeded (webhook or Stripe's answer; the process start until then).",
)
LAST_PAYMENT_REQUEST_OK: Final = MetricSpec(
    "gateway_last_payment_request_success_timestamp_seconds",
    Kind.GAUGE,
    "When a stripe.* procedure call last succeeded (the process start until then).",
)
LAST_STRIPE_OK: Final = MetricSpec(
    "gateway_last_stripe_success_timestamp_seconds",
    Kind.GAUGE,
    "When Stripe last answered a call (the process start until then).",
)
LAST_WEBHOOK: Final = MetricSpec(
    "gateway_last_webhook_received_timestamp_seconds",
    Kind.GAUGE,
    "When a correctly signed webhook delivery was last recorded (the process start until then).",
)
MAINTENANCE: Final = MetricSpec(
    "gateway_maintenance_enabled",
    Kind.GAUGE,
    "1 while maintenance is on (payment mutations refused), 0 otherwise; as this process last read the switch.",
)
START_TIME: Final = MetricSpec(
    "gateway_start_time_seconds", Kind.GAUGE, "When this gateway process started, Unix seconds."
)
HEALTH: Final = MetricSpec(
    "gateway_health_check_status",
    Kind.GAUGE,
    "1 unless the health check fails (pass or warn), 0 when it fails; the store's as last checked (by a probe, "
    "or every 15 s in the background).",
    ("check",),
)
INFO: Final = MetricSpec(
    "gateway_info",
    Kind.GAUGE,
    "Always 1; the labels say which gateway this is (version, stripe_mode test or live).",
    ("version", "stripe_mode"),
)

CATALOGUE: Final = (
    PROCEDURE_CALLS,
    PROCEDURE_DURATION,
    BATCH_SIZE,
    HTTP_REQUESTS,
    HTTP_DURATION,
    STRIPE_REQUESTS,
    STRIPE_DURATION,
    STRIPE_CONSECUTIVE_ERRORS,
    WEBHOOK_EVENTS,
    WEBHOOK_LAG,
    PAYMENTS,
    PAYMENT_AMOUNTS,
    LAST_PAYMENT_SUCCEEDED,
    LAST_PAYMENT_REQUEST_OK,
    LAST_STRIPE_OK,
    LAST_WEBHOOK,
    MAINTENANCE,
    START_TIME,
    HEALTH,
    INFO,
)
