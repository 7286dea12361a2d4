"""The JSON answers of `/metrics/payments` (the seed's summary, exactly its fields and formats) and
`/metrics/payments/detailed`, built from `Metrics` on request."""

from __future__ import annotations

from typing import Final

from gateway.codec import epoch_iso
from gateway.metrics.catalogue import LAG_BUCKETS
from gateway.metrics.histogram import Histogram
from gateway.metrics.recorder import Figures, Metrics, PaymentTotals

__all__ = ["detailed_report", "payment_summary"]

PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def _summary(totals: PaymentTotals) -> dict[str, object]:
    """The seed's counts: payment requests (stripe.* calls), how many succeeded (OK) or failed (any error code),
    the success rate as "94.67%" and the mean duration as "0.234s". Without a payment request, both are zero:
    "0.00%" and "0.000s" (nothing succeeded, nothing was slow)."""
    total, success, seconds = totals
    return {
        "totalPayments": total,
        "successCount": success,
        "failureCount": total - success,
        "successRate": f"{100 * success / total:.2f}%" if total else "0.00%",
        "averageResponseTime": f"{seconds / total:.3f}s" if total else "0.000s",
    }


def payment_summary(metrics: Metrics) -> dict[str, object]:
    """`GET /metrics/payments`: since this process started. `lastUpdated` is when the last payment request ended
    (when the process started, before any)."""
    summary = _summary(metrics.payment_totals(last_hour=False))
    last = metrics.last_payment_request_at
    summary["lastUpdated"] = epoch_iso(last if last is not None else metrics.started_at)
    return summary


def _latency(histogram: Histogram | None) -> dict[str, float | None]:
    names = [name for name, _ in PERCENTILES] + ["mean", "max"]
    if histogram is None or histogram.count == 0:
        return dict.fromkeys(names)
    values = [histogram.quantile(q) for _, q in PERCENTILES] + [histogram.mean(), histogram.max]
    return {name: _round(value) for name, value in zip(names, values, strict=True)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)  # seconds, to the microsecond


def _bump(table: dict[str, int], key: str, n: int) -> None:
    table[key] = table.get(key, 0) + n


def _procedures(figures: Figures) -> dict[str, object]:
    kinds: dict[str, str] = {}
    by_code: dict[str, dict[str, int]] = {}
    by_transport: dict[str, dict[str, int]] = {}
    latency: dict[str, Histogram] = {}
    for (procedure, kind, transport, code), n in sorted(figures.calls.items()):
        kinds[procedure] = kind
        _bump(by_code.setdefault(procedure, {}), code, n)
        _bump(by_transport.setdefault(procedure, {}), transport, n)
    for (procedure, _, _), histogram in figures.call_seconds.items():
        latency.setdefault(procedure, Histogram(histogram.bounds)).merge(histogram)
    return {
        procedure: {
            "type": kind,
            "calls": sum(by_code[procedure].values()),
            "byCode": by_code[procedure],
            "byTransport": by_transport[procedure],
            "latencySeconds": _latency(latency.get(procedure)),
        }
        for procedure, kind in kinds.items()
    }


def _stripe(figures: Figures) -> dict[str, object]:
    by_outcome: dict[str, dict[str, int]] = {}
    errors: dict[str, int] = {}
    for (operation, outcome), n in sorted(figures.stripe.items()):
        _bump(by_outcome.setdefault(operation, {}), outcome, n)
        if outcome != "ok":
            _bump(errors, outcome, n)
    operations = {
        operation: {
            "calls": sum(outcomes.values()),
            "byOutcome": outcomes,
            "latencySeconds": _latency(figures.stripe_seconds.get(operation)),
        }
        for operation, outcomes in by_outcome.items()
    }
    return {
        "calls": sum(figures.stripe.values()),
        "errors": sum(errors.values()),
        "errorsByKind": errors,
        "byOperation": operations,
    }


def _webhooks(figures: Figures) -> dict[str, object]:
    by_type: dict[str, dict[str, int]] = {}
    by_outcome: dict[str, int] = {}
    for (event_type, outcome), n in sorted(figures.webhooks.items()):
        _bump(by_type.setdefault(event_type, {}), outcome, n)
        _bump(by_outcome, outcome, n)
    lag = Histogram(LAG_BUCKETS)  # the bounds every type's lag is observed with: merge() needs the same
    for histogram in figures.webhook_lag.values():
        lag.merge(histogram)
    return {
        "deliveries": sum(by_outcome.values()),
        "byOutcome": by_outcome,
        "byType": by_type,
        "lagSeconds": _latency(lag),
    }


def _payment_outcomes(figures: Figures) -> dict[str, dict[str, dict[str, int]]]:
    outcomes: dict[str, dict[str, dict[str, int]]] = {
        outcome: {} for outcome in ("succeeded", "failed", "canceled", "refunded")
    }
    for (outcome, currency), (count, amount) in sorted(figures.payments.items()):
        outcomes.setdefault(outcome, {})[currency] = {"count": count, "amount": amount}
    return outcomes


def _http(figures: Figures) -> dict[str, object]:
    by_status: dict[str, int] = {}
    by_route: dict[str, int] = {}
    for (route, status), n in sorted(figures.http.items()):
        _bump(by_status, str(status), n)
        _bump(by_route, route, n)
    return {"requests": sum(by_status.values()), "byStatus": by_status, "byRoute": by_route}


def _batches(figures: Figures) -> dict[str, object]:
    return {
        transport: {"requests": h.count, "meanCalls": _round(h.mean()), "maxCalls": int(h.max)}
        for transport, h in sorted(figures.batch_sizes.items())
    }


def _window(figures: Figures, totals: PaymentTotals) -> dict[str, object]:
    return {
        "payments": _summary(totals),
        "procedures": _procedures(figures),
        "stripe": _stripe(figures),
        "webhooks": _webhooks(figures),
        "paymentOutcomes": _payment_outcomes(figures),
        "http": _http(figures),
        "batches": _batches(figures),
    }


def _when(epoch: float | None) -> str | None:
    return epoch_iso(epoch) if epoch is not None else None


def detailed_report(metrics: Metrics) -> dict[str, object]:
    """`GET /metrics/payments/detailed`: the same figures since the process started and over the last hour.
    Latencies are in seconds (p50/p95/p99 within 10 %, from log-spaced buckets); amounts in minor units."""
    now = metrics.now()
    return {
        "generatedAt": epoch_iso(now),
        "startedAt": epoch_iso(metrics.started_at),
        "uptimeSeconds": round(now - metrics.started_at, 3),
        "stripeConsecutiveErrors": metrics.stripe_consecutive_errors,
        # null: not since the process started
        "lastPaymentSucceededAt": _when(metrics.last_payment_succeeded_at),
        "lastStripeSuccessAt": _when(metrics.last_stripe_ok_at),
        "lastWebhookAt": _when(metrics.last_webhook_at),
        "sinceStart": _window(metrics.since_start(), metrics.payment_totals(last_hour=False)),
        "lastHour": _window(metrics.last_hour(), metrics.payment_totals(last_hour=True)),
    }
