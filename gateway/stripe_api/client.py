"""The gateway's one door to Stripe: the SDK's async client on aiohttp, pinned API version, timeouts, network
retries, idempotency keys on every write, errors mapped once, and a log line per failed call with Stripe's
request id (never the key)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import msgspec
import stripe
from loguru import logger

from gateway.settings import Settings
from gateway.stripe_api.errors import classify, network_failure
from gateway.stripe_api.models import (
    Charge,
    Customer,
    EphemeralKey,
    PaymentIntent,
    PaymentMethodDomain,
    Refund,
    WebhookEndpoint,
)

__all__ = ["StripeApi"]

T = TypeVar("T")


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain data; expanded sub-objects the gateway only needs the id of are reduced to it."""
    data: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    for field in ("latest_charge", "charge", "customer", "payment_intent"):
        value = data.get(field)
        if isinstance(value, dict):
            data[field] = value.get("id")
    return data


def _decode(obj: Any, type_: type[T]) -> T:
    return msgspec.convert(_plain(obj), type_, strict=False)


class StripeApi:
    """Async Stripe calls used by the payment service. Create once at start-up; `close()` on shutdown."""

    def __init__(self, settings: Settings) -> None:
        self._http = stripe.AIOHTTPClient(timeout=settings.stripe_timeout)
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self._client = stripe.StripeClient(
            settings.stripe_secret_key,
            stripe_version=settings.stripe_api_version,
            max_network_retries=settings.stripe_max_network_retries,
            http_client=self._http,
            base_addresses=base,  # type: ignore[arg-type]
        )
        self.api_version = settings.stripe_api_version
        self.livemode = not settings.stripe_test_mode
        self.on_call: Callable[[str, str, float], None] | None = None
        """Called with (operation, outcome, seconds) after every call: `ok` or a FailureKind (for metrics)."""

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await call()
        except (stripe.StripeError, TimeoutError, aiohttp.ClientError) as error:
            failure = (
                classify(error, operation)
                if isinstance(error, stripe.StripeError)
                else network_failure(error, operation)
            )
            self._report(operation, failure.kind.value, started)
            log = logger.bind(
                operation=operation,
                kind=failure.kind.value,
                stripeCode=failure.code,
                declineCode=failure.decline_code,
                httpStatus=failure.http_status,
                stripeRequestId=failure.request_id,
            )
            if failure.kind.value in ("card", "invalid_request", "not_found"):
                log.info("stripe_call_refused")
            else:
                log.warning("stripe_call_failed")
            raise failure from None
        self._report(operation, "ok", started)
        return result

    def _report(self, operation: str, outcome: str, started: float) -> None:
        if self.on_call is not None:
            self.on_call(operation, outcome, time.perf_counter() - started)

    async def ping(self) -> None:
        """The cheapest authenticated call there is (one PaymentIntent listed), to learn whether Stripe answers."""
        await self._call(
            "payment_intents.list",
            functools.partial(self._client.v1.payment_intents.list_async, {"limit": 1}),
        )

    # -- payment intents ---------------------------------------------------------------------------------------

    async def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
        customer_id: str | None = None,
        description: str | None = None,
    ) -> PaymentIntent:
        """A PaymentIntent with Stripe's automatic payment methods (cards, Apple Pay, Google Pay, as enabled in
        the dashboard): with the API pinned at 2023-08-16 or later, leaving out both `payment_method_types` and
        `automatic_payment_methods` turns them on, which the emulator also accepts."""
        params: dict[str, Any] = {"amount": amount, "currency": currency, "metadata": dict(metadata)}
        if customer_id:
            params["customer"] = customer_id
        if description:
            params["description"] = description
        intent = await self._call(
            "payment_intents.create",
            lambda: self._client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(intent, PaymentIntent)

    async def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        intent = await self._call(
            "payment_intents.retrieve", lambda: self._client.v1.payment_intents.retrieve_async(intent_id)
        )
        return _decode(intent, PaymentIntent)

    async def update_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        amount: int | None = None,
        currency: str | None = None,
        customer_id: str | None = None,
    ) -> PaymentIntent:
        params: dict[str, Any] = {}
        if amount is not None:
            params["amount"] = amount
        if currency is not None:
            params["currency"] = currency
        if customer_id is not None:
            params["customer"] = customer_id
        intent = await self._call(
            "payment_intents.update",
            lambda: self._client.v1.payment_intents.update_async(
                intent_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(intent, PaymentIntent)

    async def cancel_payment_intent(
        self, intent_id: str, *, idempotency_key: str, reason: str = "requested_by_customer"
    ) -> PaymentIntent:
        intent = await self._call(
            "payment_intents.cancel",
            lambda: self._client.v1.payment_intents.cancel_async(
                intent_id,
                {"cancellation_reason": reason},
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(intent, PaymentIntent)

    async def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str, return_url: str | None = None
    ) -> PaymentIntent:
        """Server-side confirmation: only the development `pay` command does this (the app's PaymentSheet confirms
        on the phone)."""
        params: dict[str, Any] = {"payment_method": payment_method}
        if return_url:
            params["return_url"] = return_url
        intent = await self._call(
            "payment_intents.confirm",
            lambda: self._client.v1.payment_intents.confirm_async(
                intent_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(intent, PaymentIntent)

    # -- charges and refunds -----------------------------------------------------------------------------------

    async def retrieve_charge(self, charge_id: str) -> Charge:
        charge = await self._call(
            "charges.retrieve", lambda: self._client.v1.charges.retrieve_async(charge_id)
        )
        return _decode(charge, Charge)

    async def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount: int | None,
        idempotency_key: str,
        metadata: Mapping[str, str],
        reason: str | None = None,
    ) -> Refund:
        """Refund `amount` (None: all that is left) of the PaymentIntent's charge."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "metadata": dict(metadata)}
        if amount is not None:
            params["amount"] = amount
        if reason:
            params["reason"] = reason
        refund = await self._call(
            "refunds.create",
            lambda: self._client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(refund, Refund)

    async def list_refunds(self, payment_intent_id: str) -> list[Refund]:
        """Every refund of the PaymentIntent, newest first (all pages)."""
        refunds: list[Refund] = []
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "limit": 100}
        while True:
            page = await self._call(
                "refunds.list",
                functools.partial(self._client.v1.refunds.list_async, dict(params)),  # type: ignore[arg-type]
            )
            refunds.extend(_decode(item, Refund) for item in page.data)
            if not page.has_more or not page.data:
                return refunds
            params["starting_after"] = refunds[-1].id

    # -- customers ---------------------------------------------------------------------------------------------

    async def create_customer(self, *, email: str, idempotency_key: str) -> Customer:
        customer = await self._call(
            "customers.create",
            lambda: self._client.v1.customers.create_async(
                {"email": email}, {"idempotency_key": idempotency_key}
            ),
        )
        return _decode(customer, Customer)

    async def update_customer(
        self, customer_id: str, *, name: str | None, phone: str | None, idempotency_key: str
    ) -> Customer:
        params: dict[str, Any] = {}
        if name:
            params["name"] = name
        if phone:
            params["phone"] = phone
        customer = await self._call(
            "customers.update",
            lambda: self._client.v1.customers.update_async(
                customer_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
        )
        return _decode(customer, Customer)

    async def create_ephemeral_key(
        self, customer_id: str, *, stripe_version: str | None = None
    ) -> EphemeralKey:
        """A short-lived key that lets the app's PaymentSheet show the customer's saved cards. It is created with
        the API version the mobile SDK expects, which may differ from the gateway's pin."""
        key = await self._call(
            "ephemeral_keys.create",
            lambda: self._client.v1.ephemeral_keys.create_async(
                {"customer": customer_id},
                {"stripe_version": stripe_version or self.api_version},
            ),
        )
        return _decode(key, EphemeralKey)

    # -- payment method domains --------------------------------------------------------------------------------

    async def list_payment_method_domains(self, domain: str | None = None) -> list[PaymentMethodDomain]:
        """The account's payment method domains (all pages), or only those named `domain`."""
        domains: list[PaymentMethodDomain] = []
        params: dict[str, Any] = {"limit": 100}
        if domain is not None:
            params["domain_name"] = domain
        while True:
            page = await self._call(
                "payment_method_domains.list",
                functools.partial(self._client.v1.payment_method_domains.list_async, dict(params)),  # type: ignore[arg-type]
            )
            domains.extend(_decode(item, PaymentMethodDomain) for item in page.data)
            if not page.has_more or not page.data:
                return domains
            params["starting_after"] = domains[-1].id

    # -- webhook endpoints -------------------------------------------------------------------------------------

    async def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        """The account's webhook endpoints (all pages), as the Dashboard's Webhooks page lists them."""
        endpoints: list[WebhookEndpoint] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = await self._call(
                "webhook_endpoints.list",
                functools.partial(self._client.v1.webhook_endpoints.list_async, dict(params)),  # type: ignore[arg-type]
            )
            endpoints.extend(_decode(item, WebhookEndpoint) for item in page.data)
            if not page.has_more or not page.data:
                return endpoints
            params["starting_after"] = endpoints[-1].id
