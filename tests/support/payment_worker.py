"""One more gateway process for multi-process tests: `python -m tests.support.payment_worker --database … …`.

It builds its own PaymentService as `gateway.http.app` does (its own SqliteStore connection on the given file, its
own StripeApi on the given emulator), then talks to the test over its standard streams, so that several workers
can be started together without sleeping:

1. it prints `ready` once the store and the Stripe client are open;
2. it waits for one line on stdin: the test's starting signal, written to every worker once all are ready;
3. it fires `--calls` concurrent createPaymentIntent calls for `--order-id` as the signed-in user `--user`
   (the same user in every worker: one customer's app retrying through several gateway instances, not several
   users contending for an order id), prints one JSON line (a `WorkerReport`) and exits 0.

The test migrates the database before starting workers, so they never race on the schema.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from gateway.payments import Actor, PaymentService, user_actor
from gateway.settings import Settings
from gateway.store import open_store
from gateway.stripe_api import StripeApi
from schemas.stripe import CreatePaymentIntentInput, PaymentIntentResult

__all__ = ["READY", "WorkerReport", "gateway_settings", "main"]

READY: Final = "ready"
"""The line a worker prints once it can serve calls."""


class WorkerReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker's calls returned, in call order: the PaymentIntent and client secret of each call that
    succeeded, and `ExceptionType: message` of each that failed."""

    payment_intent_ids: list[str]
    client_secrets: list[str]
    errors: list[str]


def gateway_settings(
    *, api_base: str, secret_key: str, publishable_key: str, database: Path, **overrides: Any
) -> Settings:
    """Settings of a gateway on the local Stripe emulator at `api_base` and a SQLite file (no network retries, so
    that nothing a test provokes is hidden by a retry)."""
    values: dict[str, Any] = {
        "stripe_secret_key": secret_key,
        "stripe_publishable_key": publishable_key,
        "stripe_api_base": api_base,
        "stripe_max_network_retries": 0,
        "database_url": f"sqlite:///{database}",
        **overrides,
    }
    return Settings(**values)


async def run(
    settings: Settings, order_id: str, amount: int, currency: str, calls: int, name: str, user: str = "racer"
) -> WorkerReport:
    store = await open_store(settings.database_url)
    stripe = StripeApi(settings)
    try:
        service = PaymentService(store, stripe, settings)
        request = CreatePaymentIntentInput(order_id=order_id, amount=amount, currency=currency)
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the starting signal
        outcomes = await asyncio.gather(
            *(
                service.create_payment_intent(request, Actor(user_actor(user), f"req_{name}_{n}"))
                for n in range(calls)
            ),
            return_exceptions=True,
        )
    finally:
        await stripe.close()
        await store.close()
    report = WorkerReport(payment_intent_ids=[], client_secrets=[], errors=[])
    for outcome in outcomes:
        if isinstance(outcome, PaymentIntentResult):
            report.payment_intent_ids.append(outcome.payment_intent_id)
            report.client_secrets.append(outcome.client_secret)
        else:
            report.errors.append(f"{type(outcome).__name__}: {outcome}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.payment_worker", description=__doc__)
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--publishable-key", required=True)
    parser.add_argument("--order-id", required=True)
    parser.add_argument("--amount", type=int, default=2500)
    parser.add_argument("--currency", default="eur")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--name", default="worker", help="names the worker's request ids")
    parser.add_argument("--user", default="racer", help="the signed-in user (`sub`) the calls are made as")
    args = parser.parse_args(argv)
    settings = gateway_settings(
        api_base=args.api_base,
        secret_key=args.secret_key,
        publishable_key=args.publishable_key,
        database=args.database,
    )
    report = asyncio.run(
        run(settings, args.order_id, args.amount, args.currency, args.calls, args.name, args.user)
    )
    sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
