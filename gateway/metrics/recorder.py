"""`Metrics`: what the gateway counts while it works, kept in memory, per process.

Every observation lands twice: in the figures since the process started (what Prometheus scrapes, and the seed's
summary) and in the current minute's figures, sixty of which make the detailed endpoint's last hour. Recording is a
few dictionary updates on the event loop, no I/O and no lock; reading builds the answers from these figures, so a
scrape never waits for anything either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypeVar

from gateway.metrics.catalogue import BATCH_BUCKETS, DURATION_BUCKETS, LAG_BUCKETS
from gateway.metrics.histogram import Histogram

__all__ = ["OK", "PAYMENT_PROCEDURE_PREFIX", "STRIPE_UNANSWERED", "Figures", "Metrics", "PaymentTotals"]

PAYMENT_PROCEDURE_PREFIX: Final = "stripe."
"""A call of a procedure under this prefix is a payment request (the seed's totalPayments)."""
OK: Final = "OK"
STRIPE_UNANSWERED: Final = frozenset({"rate_limit", "connection", "timeout", "api", "authentication"})
"""Stripe call outcomes that are not an answer about the payment (a decline is one): they make `errors in a row`."""
WINDOW_MINUTES: Final = 60

K = TypeVar("K")

CallKey = tuple[str, str, str, str]
"""(procedure, type, transport, code)"""
SeriesKey = tuple[str, str, str]
"""(procedure, type, transport)"""


def _observe(table: dict[K, Histogram], key: K, bounds: tuple[float, ...], value: float) -> None:
    histogram = table.get(key)
    if histogram is None:
        histogram = table[key] = Histogram(bounds)
    histogram.observe(value)


def _add_counts(mine: dict[K, int], theirs: dict[K, int]) -> None:
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


def _add_histograms(mine: dict[K, Histogram], theirs: dict[K, Histogram], fine: bool) -> None:
    for key, histogram in theirs.items():
        target = mine.get(key)
        if target is None:
            target = mine[key] = Histogram(histogram.bounds)
        target.merge(histogram, fine=fine)


@dataclass(slots=True)
class Figures:
    """Counts over some span of time (since start, or one minute)."""

    calls: dict[CallKey, int] = field(default_factory=dict)
    call_seconds: dict[SeriesKey, Histogram] = field(default_factory=dict)
    batch_sizes: dict[str, Histogram] = field(default_factory=dict)
    http: dict[tuple[str, int], int] = field(default_factory=dict)
    """(route, HTTP status) -> requests"""
    http_seconds: dict[str, Histogram] = field(default_factory=dict)
    stripe: dict[tuple[str, str], int] = field(default_factory=dict)
    stripe_seconds: dict[str, Histogram] = field(default_factory=dict)
    webhooks: dict[tuple[str, str], int] = field(default_factory=dict)
    webhook_lag: dict[str, Histogram] = field(default_factory=dict)
    payments: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(outcome, currency) -> [count, amount in minor units]"""

    def histograms(self) -> Iterator[Histogram]:
        """Every histogram of these figures."""
        for table in (
            self.call_seconds,
            self.batch_sizes,
            self.http_seconds,
            self.stripe_seconds,
            self.webhook_lag,
        ):
            yield from table.values()

    def merge(self, other: Figures, *, fine: bool = True) -> None:
        """Add `other`'s figures to these (histograms without their fine buckets unless `fine`)."""
        _add_counts(self.calls, other.calls)
        _add_counts(self.http, other.http)
        _add_counts(self.stripe, other.stripe)
        _add_counts(self.webhooks, other.webhooks)
        _add_histograms(self.call_seconds, other.call_seconds, fine)
        _add_histograms(self.batch_sizes, other.batch_sizes, fine)
        _add_histograms(self.http_seconds, other.http_seconds, fine)
        _add_histograms(self.stripe_seconds, other.stripe_seconds, fine)
        _add_histograms(self.webhook_lag, other.webhook_lag, fine)
        for key, (count, amount) in other.payments.items():
            totals = self.payments.setdefault(key, [0, 0])
            totals[0] += count
            totals[1] += amount


class PaymentTotals(NamedTuple):
    requests: int
    successes: int
    seconds: float
    """Summed duration of those requests."""


class Metrics:
    """The gateway's figures. One per application; every part of the gateway reports into it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started_at = clock()
        self._older = Figures()
        """Everything older than the last hour, folded together as minutes leave the window."""
        self._minutes: dict[int, Figures] = {}
        self._minute_now = int(self.started_at // 60)
        self._current = self._minutes[self._minute_now] = Figures()
        self._minute_span = (self._minute_now * 60.0, self._minute_now * 60.0 + 60.0)
        """[start, end) of the current minute in clock seconds: the hot path's check is two comparisons."""
        self.stripe_consecutive_errors = 0
        self._payment_procedures: dict[str, bool] = {}
        self.last_payment_request_at: float | None = None
        """When a payment request last ended (any outcome): the seed summary's lastUpdated."""
        # When each last happened; None: not since the process started.
        self.last_payment_request_ok_at: float | None = None
        self.last_payment_succeeded_at: float | None = None
        self.last_stripe_ok_at: float | None = None
        self.last_stripe_call_at: float | None = None
        self.last_webhook_at: float | None = None

    # -- recording (hot path) ------------------------------------------------------------------------------------

    def _minute(self) -> Figures:
        """This minute's figures: each observation is recorded once, here (a few µs per request matter)."""
        start, end = self._minute_span
        now = self._clock()
        if start <= now < end:
            return self._current
        return self._turn_to(int(now // 60))

    def _turn_to(self, minute: int) -> Figures:
        """Make `minute` the current one (any other minute than the current: the clock may also step back)."""
        if minute != self._minute_now:
            for histogram in self._current.histograms():
                histogram.fold()  # the minute's values leave its buffers: only the current minute's hold any
            self._minute_now = minute
            self._minute_span = (minute * 60.0, minute * 60.0 + 60.0)
            current = self._minutes.get(minute)
            if current is None:
                current = self._minutes[minute] = Figures()
            self._current = current
            for old in sorted(m for m in self._minutes if m <= minute - WINDOW_MINUTES):
                self._older.merge(self._minutes.pop(old))
        return self._current

    def declare_procedure(self, procedure: str, kind: str, transports: Iterable[str]) -> None:
        """Count a procedure's successful calls from zero before the first one: Prometheus's `rate()` cannot see
        a series' first increment, and the alerts divide by this one."""
        for transport in transports:
            self._older.calls.setdefault((procedure, kind, transport, OK), 0)

    def procedure_call(self, procedure: str, kind: str, transport: str, code: str, seconds: float) -> None:
        """One call ended with `code` (OK or the tRPC error code) after `seconds`."""
        self._counted_calls(procedure, kind, transport, code, 1).observe(seconds)

    def procedure_calls(
        self, procedure: str, kind: str, transport: str, code: str, durations: Sequence[float]
    ) -> None:
        """Calls of one procedure that ended with the same code (a batch's, counted together), each after its
        duration in seconds."""
        self._counted_calls(procedure, kind, transport, code, len(durations)).observe_all(durations)

    def _counted_calls(self, procedure: str, kind: str, transport: str, code: str, n: int) -> Histogram:
        """Count `n` calls, note when a payment request last ended; the series' duration histogram, for the caller
        to observe the durations in. Every call of every request comes here: `_minute` and `_observe` are written
        out (8 % fewer instructions for a batch)."""
        start, end = self._minute_span
        now = self._clock()
        figures = self._current if start <= now < end else self._turn_to(int(now // 60))
        calls = figures.calls
        key = (procedure, kind, transport, code)
        calls[key] = calls.get(key, 0) + n
        payment = self._payment_procedures.get(procedure)
        if payment is None:
            payment = self._remember_procedure(procedure)
        if payment:
            self.last_payment_request_at = now
            if code == OK:
                self.last_payment_request_ok_at = now
        series = (procedure, kind, transport)
        histogram = figures.call_seconds.get(series)
        if histogram is None:
            histogram = figures.call_seconds[series] = Histogram(DURATION_BUCKETS)
        return histogram

    def _remember_procedure(self, procedure: str) -> bool:
        """Whether `procedure` is a payment procedure, remembered: the recording methods look it up (a third of
        `startswith`'s cost). Procedure labels are the registry's paths and `unknown`, a bounded set."""
        payment = self._payment_procedures[procedure] = procedure.startswith(PAYMENT_PROCEDURE_PREFIX)
        return payment

    def batch(self, transport: str, size: int) -> None:
        _observe(self._minute().batch_sizes, transport, BATCH_BUCKETS, float(size))

    def http_request(self, route: str, status: int, seconds: float) -> None:
        # Every request comes here: written out as `procedure_call` is.
        start, end = self._minute_span
        now = self._clock()
        figures = self._current if start <= now < end else self._turn_to(int(now // 60))
        http = figures.http
        key = (route, status)
        http[key] = http.get(key, 0) + 1
        histogram = figures.http_seconds.get(route)
        if histogram is None:
            histogram = figures.http_seconds[route] = Histogram(DURATION_BUCKETS)
        histogram.observe(seconds)

    def stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        """One call to Stripe ended: `ok` or a failure kind."""
        figures = self._minute()
        key = (operation, outcome)
        figures.stripe[key] = figures.stripe.get(key, 0) + 1
        _observe(figures.stripe_seconds, operation, DURATION_BUCKETS, seconds)
        now = self._clock()
        self.last_stripe_call_at = now
        if outcome in STRIPE_UNANSWERED:
            self.stripe_consecutive_errors += 1
        else:
            self.stripe_consecutive_errors = 0
            self.last_stripe_ok_at = now

    def webhook(self, event_type: str, outcome: str) -> None:
        """One delivery answered: applied, duplicate, ignored, failed or rejected."""
        figures = self._minute()
        key = (event_type, outcome)
        figures.webhooks[key] = figures.webhooks.get(key, 0) + 1
        if outcome not in ("failed", "rejected"):
            self.last_webhook_at = self._clock()

    def webhook_lag(self, event_type: str, created: int) -> None:
        """A new event was recorded: how long after Stripe created it."""
        lag = max(0.0, self._clock() - created)
        _observe(self._minute().webhook_lag, event_type, LAG_BUCKETS, lag)

    def payment(self, outcome: str, currency: str, amount: int) -> None:
        """A payment outcome applied from Stripe's webhook: succeeded, failed, canceled or refunded."""
        totals = self._minute().payments.setdefault((outcome, currency), [0, 0])
        totals[0] += 1
        totals[1] += amount
        if outcome == "succeeded":
            self.last_payment_succeeded_at = self._clock()

    # -- reading -------------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def _spans(self, last_hour: bool) -> list[Figures]:
        self._minute()  # folds the minutes that left the window, so none is counted twice or lost
        spans = [figures for _, figures in sorted(self._minutes.items())]
        return spans if last_hour else [self._older, *spans]

    def since_start(self, *, fine: bool = True) -> Figures:
        """Everything since the process started, merged: up to 61 merges, for a reader, never the hot path.
        Without `fine`, histograms keep their Prometheus buckets only (no percentiles): much cheaper."""
        merged = Figures()
        for figures in self._spans(last_hour=False):
            merged.merge(figures, fine=fine)
        return merged

    def last_hour(self, *, fine: bool = True) -> Figures:
        """The figures of the last sixty minutes (the current one included), merged."""
        merged = Figures()
        for figures in self._spans(last_hour=True):
            merged.merge(figures, fine=fine)
        return merged

    def payment_totals(self, *, last_hour: bool) -> PaymentTotals:
        """Payment requests, successes and their summed duration, without merging anything: what the summary and
        the health need, for a few dictionary walks (a probe may come every second)."""
        total = success = 0
        seconds = 0.0
        for figures in self._spans(last_hour):
            for (procedure, _, _, code), n in figures.calls.items():
                if procedure.startswith(PAYMENT_PROCEDURE_PREFIX):
                    total += n
                    success += n if code == OK else 0
            for (procedure, _, _), histogram in figures.call_seconds.items():
                if procedure.startswith(PAYMENT_PROCEDURE_PREFIX):
                    seconds += histogram.sum
        return PaymentTotals(total, success, seconds)
