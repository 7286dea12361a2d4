"""The payment domain: orders, their PaymentIntents, cancellations and refunds, between the store and Stripe.

Guarantees, and what gives them:
- **One live PaymentIntent per order.** The order row is written first (the database decides which concurrent
  call creates it); the PaymentIntent is then created with an idempotency key made of the order's random nonce
  and its attempt number, from the order row's own amount and currency, so every concurrent or retried call —
  in this process or another — gets the same intent from Stripe. A changed amount updates that intent; a new
  intent is made only after the previous one is canceled (the attempt number then moves on).
- **Nothing half-written.** Every store write is one transaction with its audit line; updates name the order
  version they read, and a concurrent change makes them read again and decide again.
- **Refunds happen once.** Each is recorded as a pending request before Stripe is called, one at a time per
  order (the database enforces it); the request's id is in Stripe's idempotency key and the refund's metadata, so
  a refund whose answer was lost is found at Stripe and recorded instead of being made again. Totals come from
  Stripe's charge, never from adding our own numbers.

A per-order lock inside the process only saves Stripe calls when many requests for one order arrive together;
correctness never depends on it.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import re
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Final, Literal

import msgspec
from loguru import logger

from gateway.codec import Issue
from gateway.errors import ErrorCode, TRPCError
from gateway.logs import now_iso
from gateway.metrics.recorder import Metrics
from gateway.payments.currencies import amount_problem, normalise_currency
from gateway.payments.reports import (
    ORDER_ID_METADATA,
    change_outcome,
    client_secret_digest,
    error_text,
    intent_record,
    payment_status,
)
from gateway.payments.states import FINAL, can_move
from gateway.settings import Settings
from gateway.store import (
    AuditEntry,
    Customer,
    NewOrder,
    Order,
    OrderUpdate,
    PaymentStatus,
    Refund,
    RefundInProgress,
    RefundRequest,
    RefundRequestStatus,
    StaleOrder,
    Store,
    StoreError,
)
from gateway.stripe_api import FailureKind, StripeApi, StripeCallError, to_trpc_error
from gateway.stripe_api.models import PaymentIntent
from gateway.stripe_api.models import Refund as StripeRefund
from gateway.trpc.inputs import validation_error
from schemas.stripe import (
    CancelPaymentIntentResult,
    CreatePaymentIntentInput,
    CustomerInput,
    NativePayAvailability,
    PaymentIntentResult,
    PaymentStatusResult,
    RefundResult,
)

__all__ = ["GUEST", "Actor", "PaymentService", "client_secret_digest", "user_actor"]

RESERVED_METADATA: Final = ORDER_ID_METADATA
UPDATABLE: Final = frozenset(
    {
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        PaymentStatus.REQUIRES_CONFIRMATION,
        PaymentStatus.REQUIRES_ACTION,
    }
)
CANCELABLE: Final = UPDATABLE | {PaymentStatus.REQUIRES_CAPTURE}
CAS_ATTEMPTS: Final = 8
STATUS_REFRESH_SECONDS: Final = 2.0
NO_WALLETS: Final = NativePayAvailability(apple_pay=False, google_pay=False)
REFUND_REQUEST_METADATA: Final = "gateway_refund_request"
"""The refund's metadata key naming our refund request: how a refund whose answer was lost is found again."""
_REFUND_REFUSALS: Final = frozenset({FailureKind.INVALID_REQUEST, FailureKind.CARD, FailureKind.NOT_FOUND})
"""Stripe looked at the refund and said no: final for that request (replayed to a retry with its key)."""
_REFUND_NOT_SENT: Final = frozenset({FailureKind.RATE_LIMIT, FailureKind.AUTHENTICATION})
"""Stripe turned the call away before looking at it: the refund was not made, and may be tried again."""
_HOSTNAME: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+")


GUEST: Final = "guest"
"""The actor (and order owner) of a caller without a bearer token, when guest checkout is on."""


def user_actor(user_id: str) -> str:
    """The actor (and order owner) of a signed-in user: `user:<sub>`, never confusable with `guest`."""
    return f"user:{user_id}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, for the audit trail and ownership: `user:<sub>` for a signed-in user, `guest` without a token,
    `operator:<name>` for the command line; and the request id when there is one. Admins (and operators) reach
    every order; others only their own (a guest: the orders whose client secret it holds)."""

    id: str
    request_id: str | None = None
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class _PaidCharge:
    payment_intent_id: str
    captured: int


class _Refusal(msgspec.Struct, frozen=True):
    """Stripe's refusal of a refund request as its caller saw it, kept to answer a retry the same way."""

    code: str
    message: str
    data: dict[str, object]


def _invalid(path: list[str | int], message: str) -> TRPCError:
    return validation_error([Issue("custom", path, message)])


class PaymentService:
    """What the `stripe.*` procedures and the operator commands do. Create once per application."""

    def __init__(
        self,
        store: Store,
        stripe: StripeApi,
        settings: Settings,
        *,
        refund_in_flight_seconds: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`refund_in_flight_seconds`: how long a refund sent to Stripe may still be in flight (by default, every
        try of a Stripe call timing out, plus a margin); a pending refund not found at Stripe after that was not
        made."""
        self._store = store
        self._metrics = metrics or Metrics()
        self._refund_in_flight_seconds = (
            refund_in_flight_seconds
            if refund_in_flight_seconds is not None
            else settings.stripe_timeout * (settings.stripe_max_network_retries + 1) + 10
        )
        self._stripe = stripe
        self._settings = settings
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._refreshed: dict[str, float] = {}
        self._wallets: tuple[float, dict[str, NativePayAvailability]] | None = None
        """When the account's payment method domains were fetched, and each enabled domain's wallets."""
        self._wallets_flight: asyncio.Task[dict[str, NativePayAvailability]] | None = None

    # -- helpers -----------------------------------------------------------------------------------------------

    def _count_outcome(self, before: Order, after: Order) -> None:
        """Payment outcomes the gateway learns from Stripe's answers (webhooks count theirs): a payment seen
        succeeded, canceled or failed before its webhook. The webhook that follows changes nothing, so nothing
        is counted twice (`before` is the version the update replaced: a concurrent change fails it)."""
        outcome = change_outcome(before, after)
        if outcome is not None:
            self._metrics.payment(outcome[0], after.currency, outcome[1])

    def _count_refunded(self, order: Order, refunded_now: int) -> None:
        """A refund made here or found at Stripe: what the store says it added to the order's total, in the same
        transaction, so a webhook that raised it meanwhile is counted by the webhook only."""
        if refunded_now > 0:
            self._metrics.payment("refunded", order.currency, refunded_now)

    @asynccontextmanager
    async def _order_lock(self, order_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(order_id)
        if lock is None:
            lock = self._locks[order_id] = asyncio.Lock()
        async with lock:
            yield

    @staticmethod
    def _audit(actor: Actor, action: str, order_id: str, **details: object) -> AuditEntry:
        return AuditEntry(
            action=action, actor=actor.id, request_id=actor.request_id, order_id=order_id, details=details
        )

    async def _order(self, order_id: str) -> Order:
        order = await self._store.get_order(order_id)
        if order is None:
            raise TRPCError(ErrorCode.NOT_FOUND, f'No order "{order_id}"')
        return order

    async def _may_reach(self, order: Order, actor: Actor, client_secret: str | None) -> bool:
        """Whether `actor` may see or change `order`: admins and operators any; a signed-in user their own; anyone
        holding the client secret of a guest order (when guest checkout is on), compared in constant time."""
        if actor.is_admin:
            return True
        if actor.id != GUEST and order.owner == actor.id:
            return True
        if order.owner != GUEST or not client_secret or not self._settings.gateway_guest_checkout:
            return False
        digest = client_secret_digest(client_secret)
        known = [
            intent.client_secret_sha256 for intent in await self._store.list_payment_intents(order.order_id)
        ]
        # Every stored digest is compared, so the time taken does not say which intent (or whether any) matched.
        matches = [hmac.compare_digest(digest, stored) for stored in known if stored is not None]
        return any(matches)

    async def _owned_order(self, order_id: str, actor: Actor, client_secret: str | None) -> Order:
        """The order if `actor` may reach it; otherwise NOT_FOUND, exactly as for an order that does not exist, so
        that nobody learns which order ids are in use by asking."""
        order = await self._store.get_order(order_id)
        if order is None or not await self._may_reach(order, actor, client_secret):
            raise TRPCError(ErrorCode.NOT_FOUND, f'No order "{order_id}"')
        return order

    async def _refuse_foreign(self, order: Order, actor: Actor, client_secret: str | None) -> None:
        """A create for an order id someone else holds: CONFLICT (a create would show the id is taken anyway)."""
        if not await self._may_reach(order, actor, client_secret):
            raise TRPCError(
                ErrorCode.CONFLICT,
                f'Order id "{order.order_id}" is taken; a guest continuing its own order sends its clientSecret',
            )

    # -- stripe.createPaymentIntent ----------------------------------------------------------------------------

    async def create_payment_intent(
        self, request: CreatePaymentIntentInput, actor: Actor
    ) -> PaymentIntentResult:
        currency = normalise_currency(request.currency)
        if currency is None:
            raise _invalid(["currency"], f'"{request.currency}" is not a currency Stripe charges in')
        problem = amount_problem(request.amount, currency)
        if problem is not None:
            raise _invalid(["amount"], problem)
        if request.metadata and RESERVED_METADATA in request.metadata:
            raise _invalid(["metadata", RESERVED_METADATA], "order_id is set by the gateway from orderId")
        customer_id = None
        if request.customer:
            existing = await self._store.get_order(request.order_id)
            if existing is not None:  # before a Customer is made at Stripe for somebody else's order
                await self._refuse_foreign(existing, actor, request.client_secret)
            customer_id = await self._customer(request.customer, actor, request.order_id)
        # Otherwise nothing is made at Stripe before `_open_intent`, whose create_order finds an existing order and
        # refuses a foreign one first: a read here would be one more store round trip for every payment.

        for _ in range(CAS_ATTEMPTS):
            async with self._order_lock(request.order_id):
                order, intent = await self._open_intent_retrying(request, currency, customer_id, actor)
            if intent is None or intent.client_secret is None:
                assert order.payment_intent_id is not None  # _open_intent leaves the order with an intent
                intent = await self._stripe.retrieve_payment_intent(order.payment_intent_id)
                order = await self._sync_from_intent(order, intent, actor)
            self._refuse_paid(order)
            # What Stripe says stands over the row: an intent canceled, or updated by a call whose store write then
            # failed, is decided again (reopened, or brought to the requested amount) before anyone gets it.
            if order.status is not PaymentStatus.CANCELED and intent.amount == request.amount:
                break
        else:
            raise TRPCError(ErrorCode.CONFLICT, "The order kept changing concurrently; retry")
        ephemeral_key = None
        if order.customer_id and request.customer is not None:
            ephemeral_key = (await self._stripe.create_ephemeral_key(order.customer_id)).secret
        if intent.client_secret is None:
            raise TRPCError(ErrorCode.BAD_GATEWAY, "Stripe returned a PaymentIntent without a client secret")
        return PaymentIntentResult(
            order_id=order.order_id,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret,
            amount=intent.amount,
            currency=intent.currency,
            status=payment_status(intent.status).value,
            publishable_key=self._settings.stripe_publishable_key,
            customer_id=order.customer_id,
            ephemeral_key=ephemeral_key,
        )

    async def _open_intent_retrying(
        self, request: CreatePaymentIntentInput, currency: str, customer_id: str | None, actor: Actor
    ) -> tuple[Order, PaymentIntent | None]:
        for _ in range(CAS_ATTEMPTS):
            try:
                return await self._open_intent(request, currency, customer_id, actor)
            except StaleOrder:
                continue
        raise TRPCError(ErrorCode.CONFLICT, "The order kept changing concurrently; retry")

    @staticmethod
    def _refuse_paid(order: Order) -> None:
        if order.status is PaymentStatus.SUCCEEDED:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order.order_id}" is already paid')
        if order.status in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_CAPTURE):
            raise TRPCError(ErrorCode.CONFLICT, f'A payment for order "{order.order_id}" is in progress')

    async def _open_intent(
        self, request: CreatePaymentIntentInput, currency: str, customer_id: str | None, actor: Actor
    ) -> tuple[Order, PaymentIntent | None]:
        """The order with a live PaymentIntent at the requested amount (and the intent, when Stripe was asked)."""
        new = NewOrder(
            order_id=request.order_id,
            amount=request.amount,
            currency=currency,
            nonce=secrets.token_hex(8),
            owner=actor.id,
            customer_id=customer_id,
        )
        created_audit = self._audit(
            actor, "order.created", request.order_id, amount=request.amount, currency=currency
        )
        order, created = await self._store.create_order(new, created_audit)
        if not created:  # someone may have created it since the first look
            await self._refuse_foreign(order, actor, request.client_secret)
        intent: PaymentIntent | None = None
        if order.payment_intent_id is None:
            order, intent = await self._create_intent(order, request, actor)
        self._refuse_paid(order)
        if order.currency != currency:
            raise TRPCError(
                ErrorCode.CONFLICT,
                f'Order "{order.order_id}" is in {order.currency.upper()}; its currency cannot change',
            )
        if order.status is PaymentStatus.CANCELED:
            reopen = OrderUpdate(
                status=PaymentStatus.CREATING,
                attempt=order.attempt + 1,
                amount=request.amount,
                payment_intent_id=None,
                customer_id=customer_id or order.customer_id,
                last_error=None,
            )
            audit = self._audit(actor, "order.reopened", order.order_id, attempt=order.attempt + 1)
            order = await self._store.update_order(order.order_id, order.version, reopen, audit)
            order, intent = await self._create_intent(order, request, actor)
        changed_customer = customer_id is not None and customer_id != order.customer_id
        if order.amount != request.amount or changed_customer:
            order, intent = await self._update_intent(order, request.amount, customer_id, actor)
        return order, intent

    async def _create_intent(
        self, order: Order, request: CreatePaymentIntentInput, actor: Actor
    ) -> tuple[Order, PaymentIntent]:
        """Create the order's PaymentIntent for its current attempt, from the order row's own amount and currency
        (every concurrent or retried call sends the same request under the same key), and record it."""
        metadata = dict(request.metadata or {})
        metadata[RESERVED_METADATA] = order.order_id
        try:
            intent = await self._stripe.create_payment_intent(
                amount=order.amount,
                currency=order.currency,
                metadata=metadata,
                description=request.description,
                customer_id=order.customer_id,
                idempotency_key=f"{order.nonce}:pi{order.attempt}:create",
            )
        except StripeCallError as failure:
            if failure.kind in (FailureKind.INVALID_REQUEST, FailureKind.CARD):
                # Stripe refused this attempt for good: the next call starts a new attempt (a new key) from the
                # amount it asks for, instead of resending the refused request forever.
                retry = OrderUpdate(attempt=order.attempt + 1, amount=request.amount)
                audit = self._audit(actor, "payment_intent.refused", order.order_id, reason=failure.code)
                with suppress(StaleOrder):
                    await self._store.update_order(order.order_id, order.version, retry, audit)
                raise
            if failure.kind is FailureKind.IDEMPOTENCY:
                # Stripe saw this order's creation before with other details (a retry after a crash, with another
                # description or metadata): the first request's details stand.
                raise TRPCError(
                    ErrorCode.CONFLICT,
                    f'Order "{order.order_id}" was started with other details; retry with the original ones',
                    cause=failure,
                ) from None
            raise
        update = OrderUpdate(
            payment_intent_id=intent.id,
            status=payment_status(intent.status),
            amount_received=intent.amount_received,
        )
        audit = self._audit(
            actor, "payment_intent.created", order.order_id, paymentIntent=intent.id, attempt=order.attempt
        )
        try:
            order = await self._store.update_order(
                order.order_id, order.version, update, audit, intent=intent_record(order, intent)
            )
        except StaleOrder:
            current = await self._order(order.order_id)
            if current.payment_intent_id != intent.id:
                raise  # something else moved on: decide again from the current order
            order = current
        return order, intent

    async def _update_intent(
        self, order: Order, amount: int, customer_id: str | None, actor: Actor
    ) -> tuple[Order, PaymentIntent]:
        if order.status not in UPDATABLE:
            raise TRPCError(
                ErrorCode.CONFLICT,
                f'Order "{order.order_id}" cannot change now (payment status: {order.status.value})',
            )
        assert order.payment_intent_id is not None
        intent = await self._stripe.update_payment_intent(
            order.payment_intent_id,
            amount=amount if amount != order.amount else None,
            customer_id=customer_id if customer_id != order.customer_id else None,
            idempotency_key=f"{order.nonce}:pi{order.attempt}:update:v{order.version}:{amount}:{customer_id}",
        )
        update = OrderUpdate(
            amount=intent.amount, status=payment_status(intent.status), customer_id=intent.customer
        )
        audit = self._audit(
            actor,
            "order.amount_changed" if intent.amount != order.amount else "order.customer_changed",
            order.order_id,
            before=order.amount,
            after=intent.amount,
        )
        order = await self._store.update_order(
            order.order_id, order.version, update, audit, intent=intent_record(order, intent)
        )
        return order, intent

    async def _sync_from_intent(self, order: Order, intent: PaymentIntent, actor: Actor) -> Order:
        """Record what Stripe says about the order's current intent (a newer fact than the store's), unless the
        order moved meanwhile (a webhook applied something newer: it stands)."""
        if intent.id != order.payment_intent_id:
            return order
        status = payment_status(intent.status)
        if not can_move(order.status, status):
            return order  # a report older than what the order already knows (see gateway.payments.states)
        error = error_text(intent)
        known = (order.status, order.amount, order.amount_received, order.last_error)
        if (status, intent.amount, intent.amount_received, error) == known:
            return order
        update = OrderUpdate(
            status=status, amount=intent.amount, amount_received=intent.amount_received, last_error=error
        )
        audit = self._audit(
            actor, "payment_intent.synced", order.order_id, before=order.status.value, after=status.value
        )
        try:
            updated = await self._store.update_order(
                order.order_id, order.version, update, audit, intent=intent_record(order, intent)
            )
        except StaleOrder:
            return await self._order(order.order_id)
        self._count_outcome(order, updated)
        return updated

    async def _customer(self, customer: CustomerInput, actor: Actor, order_id: str) -> str:
        """The Stripe Customer for this caller and e-mail address, found again by a hash (the address itself is
        not kept). A guest gets a new Customer per order: reusing one by e-mail alone would hand
        anybody who types an address an ephemeral key to that person's saved cards."""
        email = customer.email.strip().lower()
        owner = actor.id if actor.id != GUEST else f"{GUEST}\0{order_id}"
        email_hash = hashlib.sha256(f"{owner}\0{email}".encode()).hexdigest()
        known = await self._store.get_customer(email_hash)
        if known is not None:
            return known.customer_id
        # Created from the e-mail alone, so that every retry sends the very same request under this key (a retry
        # with a corrected name must not be refused as "another request"); the name and phone are set after.
        created = await self._stripe.create_customer(email=email, idempotency_key=f"customer:{email_hash}")
        if customer.name or customer.phone:
            details = hashlib.sha256(msgspec.json.encode([customer.name, customer.phone])).hexdigest()[:16]
            await self._stripe.update_customer(
                created.id,
                name=customer.name,
                phone=customer.phone,
                idempotency_key=f"customer:{email_hash}:details:{details}",
            )
        stored = await self._store.add_customer(
            Customer(email_hash=email_hash, customer_id=created.id, created_at=now_iso())
        )
        return stored.customer_id

    # -- stripe.getPaymentStatus -------------------------------------------------------------------------------

    async def payment_status(
        self, order_id: str, actor: Actor, client_secret: str | None = None
    ) -> PaymentStatusResult:
        """From the store, which webhooks keep current. While a payment is not final, Stripe is also asked (at
        most every couple of seconds per order), so a status is right even before the webhook arrives.
        NOT_FOUND for an order the actor may not reach."""
        order = await self._owned_order(order_id, actor, client_secret)
        if (
            order.status not in FINAL
            and order.payment_intent_id is not None
            and self._due_for_refresh(order_id)
        ):
            try:
                intent = await self._stripe.retrieve_payment_intent(order.payment_intent_id)
            except StripeCallError as failure:
                if not failure.transient:
                    raise
                logger.bind(orderId=order_id, kind=failure.kind.value).warning("payment_status_stale")
            else:
                order = await self._sync_from_intent(order, intent, actor)
        return self._status_result(order)

    def _due_for_refresh(self, order_id: str) -> bool:
        now = time.monotonic()
        if now - self._refreshed.get(order_id, -STATUS_REFRESH_SECONDS) < STATUS_REFRESH_SECONDS:
            return False
        if len(self._refreshed) > 10_000:
            self._refreshed.clear()
        self._refreshed[order_id] = now
        return True

    @staticmethod
    def _status_result(order: Order) -> PaymentStatusResult:
        refund_status: Literal["none", "partial", "full"]
        if order.amount_refunded <= 0:
            refund_status = "none"
        elif order.amount_refunded >= order.amount_received:
            refund_status = "full"
        else:
            refund_status = "partial"
        return PaymentStatusResult(
            order_id=order.order_id,
            status=order.status.value,
            amount=order.amount,
            currency=order.currency,
            amount_received=order.amount_received,
            amount_refunded=order.amount_refunded,
            refund_status=refund_status,
            payment_intent_id=order.payment_intent_id,
            last_payment_error=order.last_error,
            updated_at=order.updated_at,
        )

    # -- stripe.cancelPaymentIntent ----------------------------------------------------------------------------

    async def cancel(
        self, order_id: str, actor: Actor, client_secret: str | None = None
    ) -> CancelPaymentIntentResult:
        """NOT_FOUND for an order the actor may not reach (its owner never changes, so one check is enough)."""
        await self._owned_order(order_id, actor, client_secret)
        async with self._order_lock(order_id):
            for _ in range(CAS_ATTEMPTS):
                try:
                    order = await self._cancel_once(order_id, actor)
                    break
                except StaleOrder:
                    continue
            else:
                raise TRPCError(ErrorCode.CONFLICT, "The order kept changing concurrently; retry")
        return CancelPaymentIntentResult(order_id=order.order_id, status=order.status.value)

    async def _cancel_once(self, order_id: str, actor: Actor) -> Order:
        order = await self._order(order_id)
        if order.status is PaymentStatus.CANCELED:
            return order
        if order.payment_intent_id is None:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order_id}" is still being created; retry shortly')
        if order.status not in CANCELABLE:
            intent = await self._stripe.retrieve_payment_intent(order.payment_intent_id)
            order = await self._sync_from_intent(order, intent, actor)
            if order.status is PaymentStatus.SUCCEEDED:
                raise TRPCError(ErrorCode.CONFLICT, f'Order "{order_id}" is paid: refund it instead')
            if order.status not in CANCELABLE:
                raise TRPCError(
                    ErrorCode.CONFLICT, f'Order "{order_id}" cannot be canceled now ({order.status.value})'
                )
        intent_id = order.payment_intent_id
        assert intent_id is not None  # checked above; a sync keeps the same intent
        try:
            intent = await self._stripe.cancel_payment_intent(
                intent_id, idempotency_key=f"{order.nonce}:pi{order.attempt}:cancel"
            )
        except StripeCallError as failure:
            if failure.kind is not FailureKind.INVALID_REQUEST:
                raise
            # Stripe moved on meanwhile (paid, say): say what it is now.
            intent = await self._stripe.retrieve_payment_intent(intent_id)
            order = await self._sync_from_intent(order, intent, actor)
            raise TRPCError(
                ErrorCode.CONFLICT, f'Order "{order_id}" cannot be canceled now ({order.status.value})'
            ) from None
        update = OrderUpdate(status=payment_status(intent.status))
        audit = self._audit(actor, "payment_intent.canceled", order_id, paymentIntent=intent.id)
        canceled = await self._store.update_order(
            order_id, order.version, update, audit, intent=intent_record(order, intent)
        )
        self._count_outcome(order, canceled)
        return canceled

    # -- stripe.refund -----------------------------------------------------------------------------------------

    async def refund(
        self,
        order_id: str,
        amount: int | None,
        actor: Actor,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> RefundResult:
        """Refund `amount` (None: all that is left) of a paid order, at most what is left.

        Every refund is first recorded as a pending request, whose id Stripe's idempotency key and the refund's
        metadata carry; so when Stripe's answer is lost, the next refund call of the order finds out at Stripe
        whether it was made (and records it) before deciding anything else. With an idempotency key, the same key
        always means the same single refund, for good. Without one, a request repeating a refund whose caller
        never learned its outcome is answered with that refund rather than making another.
        """
        fingerprint = hashlib.sha256(msgspec.json.encode([order_id, amount, reason])).hexdigest()
        async with self._order_lock(order_id):
            if idempotency_key is not None:
                known = await self._store.get_refund_request(caller_key=idempotency_key)
                if known is not None:
                    return await self._answer_known_request(known, fingerprint, actor)
            order = await self._paid_order(order_id, actor)
            settled = await self._settle_pending_refund(order, actor)
            if (
                settled is not None
                and settled.status is RefundRequestStatus.SUCCEEDED
                and idempotency_key is None
                and settled.caller_key is None
                and (settled.fingerprint, settled.requested_by) == (fingerprint, actor.id)
                and settled.result is not None
            ):
                # Its caller got an error, not this refund: the same request again is that caller retrying.
                return msgspec.json.decode(settled.result, type=RefundResult)
            return await self._start_refund(order, amount, fingerprint, actor, reason, idempotency_key)

    async def _answer_known_request(
        self, request: RefundRequest, fingerprint: str, actor: Actor
    ) -> RefundResult:
        """A request whose caller key was seen before: its outcome again, as Stripe replays an idempotent call."""
        if request.fingerprint != fingerprint:
            raise TRPCError(ErrorCode.CONFLICT, "This idempotency key was used for another refund request")
        if request.status is RefundRequestStatus.PENDING:
            order = await self._order(request.order_id)
            settled = await self._settle_pending_refund(order, actor)
            request = settled if settled is not None and settled.id == request.id else request
        if request.status is RefundRequestStatus.SUCCEEDED and request.result is not None:
            return msgspec.json.decode(request.result, type=RefundResult)
        if request.status is RefundRequestStatus.REFUSED and request.error is not None:
            refusal = msgspec.json.decode(request.error, type=_Refusal)
            raise TRPCError(ErrorCode[refusal.code], refusal.message, data=refusal.data)
        if request.status is RefundRequestStatus.ABANDONED:
            # Stripe never made it: try it again, under the same request (a new Stripe key for the new try).
            order = await self._paid_order(request.order_id, actor)
            await self._settle_pending_refund(order, actor)
            charge, to_refund = await self._refundable(order, request.requested_amount, actor)
            audit = self._audit(
                actor, "refund.retried", order.order_id, refundRequest=request.id, amount=to_refund
            )
            try:
                request = await self._store.retry_refund_request(request.id, to_refund, audit)
            except RefundInProgress:
                raise self._refund_under_way(order.order_id) from None
            return await self._send_refund(request, order, charge.payment_intent_id, actor)
        raise self._refund_under_way(request.order_id)

    async def _paid_order(self, order_id: str, actor: Actor) -> Order:
        order = await self._order(order_id)
        if order.status is not PaymentStatus.SUCCEEDED and order.payment_intent_id is not None:
            order = await self._sync_from_intent(
                order, await self._stripe.retrieve_payment_intent(order.payment_intent_id), actor
            )
        if order.status is not PaymentStatus.SUCCEEDED or order.payment_intent_id is None:
            raise TRPCError(
                ErrorCode.CONFLICT,
                f'Order "{order_id}" is not paid ({order.status.value}): nothing to refund',
            )
        return order

    async def _refundable(self, order: Order, amount: int | None, actor: Actor) -> tuple[_PaidCharge, int]:
        """The order's charge as Stripe has it now, and what this refund will be (checked against what is left)."""
        assert order.payment_intent_id is not None  # a paid order
        intent = await self._stripe.retrieve_payment_intent(order.payment_intent_id)
        if intent.latest_charge is None:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order.order_id}" has no charge to refund')
        charge = await self._stripe.retrieve_charge(intent.latest_charge)
        paid = _PaidCharge(intent.id, charge.amount_captured or charge.amount)
        if charge.amount_refunded > order.amount_refunded:
            audit = self._audit(
                actor, "order.refund_total_synced", order.order_id, amountRefunded=charge.amount_refunded
            )
            raised, refunded_now = await self._store.raise_amount_refunded(
                order.order_id, charge.amount_refunded, audit
            )
            self._count_refunded(raised, refunded_now)
        refundable = paid.captured - charge.amount_refunded
        if refundable <= 0:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order.order_id}" is already fully refunded')
        if amount is not None and amount > refundable:
            raise _invalid(
                ["amount"],
                f"Amount {amount} exceeds what can still be refunded: {refundable} {order.currency.upper()}",
            )
        return paid, amount if amount is not None else refundable

    async def _start_refund(
        self,
        order: Order,
        amount: int | None,
        fingerprint: str,
        actor: Actor,
        reason: str | None,
        caller_key: str | None,
    ) -> RefundResult:
        charge, to_refund = await self._refundable(order, amount, actor)
        request = RefundRequest(
            id=f"rr_{secrets.token_hex(12)}",
            order_id=order.order_id,
            caller_key=caller_key,
            fingerprint=fingerprint,
            requested_amount=amount,
            amount=to_refund,
            reason=reason,
            requested_by=actor.id,
            request_id=actor.request_id,
            status=RefundRequestStatus.PENDING,
            tries=1,
            refund_id=None,
            result=None,
            error=None,
            created_at="",
            updated_at="",
        )
        audit = self._audit(
            actor, "refund.requested", order.order_id, refundRequest=request.id, amount=to_refund
        )
        stored, started = await self._store.start_refund_request(request, audit)
        if not started:  # another process got there first, with this key or another refund of the order
            if caller_key is not None and stored.caller_key == caller_key:
                return await self._answer_known_request(stored, fingerprint, actor)
            raise self._refund_under_way(order.order_id)
        return await self._send_refund(stored, order, charge.payment_intent_id, actor)

    async def _send_refund(
        self, request: RefundRequest, order: Order, payment_intent_id: str, actor: Actor
    ) -> RefundResult:
        try:
            refund = await self._stripe.create_refund(
                payment_intent_id=payment_intent_id,
                amount=request.amount,
                idempotency_key=f"{order.nonce}:refund:{request.id}:{request.tries}",
                reason=request.reason,
                metadata={
                    "order_id": order.order_id,
                    "requested_by": actor.id,
                    REFUND_REQUEST_METADATA: request.id,
                },
            )
        except StripeCallError as failure:
            await self._refund_failed(request, failure, actor)
            raise
        return await self._finish_refund(request, refund, actor)

    async def _refund_failed(self, request: RefundRequest, failure: StripeCallError, actor: Actor) -> None:
        """Close the request when Stripe's answer says the refund was not made; leave it pending otherwise."""
        if failure.kind in _REFUND_REFUSALS:
            error = to_trpc_error(failure)
            refusal = _Refusal(error.code.name, error.message, dict(error.data or {}))
            audit = self._audit(actor, "refund.refused", request.order_id, refundRequest=request.id)
            status = RefundRequestStatus.REFUSED
            detail = msgspec.json.encode(refusal).decode()
        elif failure.kind in _REFUND_NOT_SENT:
            audit = self._audit(actor, "refund.abandoned", request.order_id, refundRequest=request.id)
            status = RefundRequestStatus.ABANDONED
            detail = f"Stripe did not take the request: {failure.kind.value}"
        else:
            # A timeout, a lost connection, a 5xx: Stripe may have made it. The next refund call of this order
            # looks for it at Stripe before anything else.
            logger.bind(orderId=request.order_id, refundRequest=request.id, kind=failure.kind.value).warning(
                "refund_outcome_unknown"
            )
            return
        with suppress(StoreError):  # if this write fails too, the request stays pending and is settled later
            await self._store.close_refund_request(request.id, status, detail, audit)

    async def _finish_refund(
        self, request: RefundRequest, refund: StripeRefund, actor: Actor
    ) -> RefundResult:
        """Record a refund Stripe made for `request`, with the order's refunded total read again from its charge
        (a replayed refund is already in it), in one transaction."""
        if refund.charge is None:
            raise TRPCError(ErrorCode.BAD_GATEWAY, "Stripe returned a refund without its charge")
        charge = await self._stripe.retrieve_charge(refund.charge)
        captured = charge.amount_captured or charge.amount
        total = charge.amount_refunded
        result = RefundResult(
            refund_id=refund.id,
            order_id=request.order_id,
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status or "pending",
            amount_refunded=total,
            amount_remaining=max(0, captured - total),
        )
        record = Refund(
            id=refund.id,
            order_id=request.order_id,
            payment_intent_id=refund.payment_intent or "",
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status or "pending",
            reason=refund.reason,
            requested_by=request.requested_by,
            refund_request_id=request.id,
            created_at="",
        )
        audit = self._audit(
            actor,
            "refund.created",
            request.order_id,
            refund=refund.id,
            refundRequest=request.id,
            amount=refund.amount,
            amountRefunded=total,
        )
        after, refunded_now = await self._store.finish_refund_request(
            request.id, record, msgspec.json.encode(result), total, audit
        )
        self._count_refunded(after, refunded_now)
        return result

    async def _settle_pending_refund(self, order: Order, actor: Actor) -> RefundRequest | None:
        """Find out what became of the order's pending refund request, if any: made at Stripe (recorded now), or
        not made and no longer possibly in flight (abandoned). Raises CONFLICT while it may still be in flight."""
        pending = await self._store.get_pending_refund_request(order.order_id)
        if pending is None:
            return None
        assert order.payment_intent_id is not None  # a paid order
        refunds = await self._stripe.list_refunds(order.payment_intent_id)
        made = next((r for r in refunds if r.metadata.get(REFUND_REQUEST_METADATA) == pending.id), None)
        if made is not None:
            result = await self._finish_refund(pending, made, actor)
            logger.bind(orderId=order.order_id, refundRequest=pending.id, refund=made.id).info(
                "refund_outcome_confirmed"
            )
            return msgspec.structs.replace(
                pending,
                status=RefundRequestStatus.SUCCEEDED,
                refund_id=made.id,
                result=msgspec.json.encode(result),
            )
        age = time.time() - datetime.datetime.fromisoformat(pending.updated_at).timestamp()
        if age < self._refund_in_flight_seconds:
            raise self._refund_under_way(order.order_id, retry_after=self._refund_in_flight_seconds - age)
        audit = self._audit(actor, "refund.abandoned", order.order_id, refundRequest=pending.id)
        note = f"not found at Stripe {age:.0f} s after it was sent"
        return await self._store.close_refund_request(pending.id, RefundRequestStatus.ABANDONED, note, audit)

    @staticmethod
    def _refund_under_way(order_id: str, retry_after: float | None = None) -> TRPCError:
        wait = f"retry in {max(1, round(retry_after))} s" if retry_after is not None else "retry shortly"
        return TRPCError(
            ErrorCode.CONFLICT,
            f'A refund of order "{order_id}" is under way or its outcome is being confirmed; {wait}',
        )

    # -- stripe.checkNativePayAvailability ---------------------------------------------------------------------

    async def native_pay_availability(self, domain: str) -> NativePayAvailability:
        """Apple Pay / Google Pay for a web domain, from Stripe's payment method domains.

        The account's whole registration list is fetched (one Stripe call per GATEWAY_NATIVE_PAY_CACHE_TTL seconds,
        however many callers and domains) and every domain is answered from it: asking Stripe per domain would let
        anyone spend the account's Stripe rate limit by asking for random names. When Stripe cannot be reached,
        the last known list answers (and the log says so); with none, the error is the caller's."""
        domain = domain.lower()
        if not _HOSTNAME.fullmatch(
            domain
        ):  # the schema's pattern, whose `$` also matches before a final newline
            raise _invalid(["domain"], "Expected a host name such as shop.example.com")
        cached = self._wallets
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._settings.gateway_native_pay_cache_ttl:
            return cached[1].get(domain, NO_WALLETS)
        flight = self._wallets_flight
        if flight is None:
            flight = self._wallets_flight = asyncio.ensure_future(self._fetch_wallets())
            flight.add_done_callback(self._wallets_fetched)
        try:
            wallets = await asyncio.shield(flight)
        except StripeCallError as failure:
            if cached is None or not failure.transient:
                raise
            logger.bind(domain=domain, kind=failure.kind.value, ageSeconds=round(now - cached[0])).warning(
                "native_pay_served_stale"
            )
            wallets = cached[1]
        return wallets.get(domain, NO_WALLETS)

    def _wallets_fetched(self, flight: asyncio.Task[dict[str, NativePayAvailability]]) -> None:
        self._wallets_flight = None
        if not flight.cancelled():
            flight.exception()  # retrieved, even when every caller has gone: no "never retrieved" warning

    async def _fetch_wallets(self) -> dict[str, NativePayAvailability]:
        wallets: dict[str, NativePayAvailability] = {}
        for registered in await self._stripe.list_payment_method_domains():
            if not registered.enabled:
                continue
            name = registered.domain_name.lower()
            known = wallets.get(name, NO_WALLETS)
            wallets[name] = NativePayAvailability(
                apple_pay=known.apple_pay or registered.apple_pay.status == "active",
                google_pay=known.google_pay or registered.google_pay.status == "active",
            )
        self._wallets = (time.monotonic(), wallets)
        return wallets

    # -- development only --------------------------------------------------------------------------------------

    async def pay_for_development(self, order_id: str, payment_method: str) -> PaymentIntent:
        """Confirm an order's PaymentIntent server-side with a test PaymentMethod (`pm_card_visa`, ...), as the
        phone's PaymentSheet would. Test mode only: refused with live keys or in production."""
        if self._settings.is_production or not self._settings.stripe_test_mode:
            raise TRPCError(ErrorCode.FORBIDDEN, "Paying from the server is for test mode only")
        order = await self._order(order_id)
        if order.payment_intent_id is None:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order_id}" has no PaymentIntent yet')
        try:
            intent = await self._stripe.confirm_payment_intent(
                order.payment_intent_id,
                payment_method=payment_method,
                idempotency_key=f"{order.nonce}:pi{order.attempt}:devpay:{secrets.token_hex(4)}",
                return_url=f"{self._settings.public_url}/dev/return",
            )
        except StripeCallError as failure:
            if failure.kind is not FailureKind.CARD:
                raise
            intent = await self._stripe.retrieve_payment_intent(order.payment_intent_id)
        # Nothing is written here: like the phone's payment, this one reaches the store through Stripe's webhook
        # (or the status check's question to Stripe), which is what the offline demo shows.
        return intent

    async def sync_order(self, order_id: str, actor: Actor) -> Order:
        """Ask Stripe for the order's PaymentIntent now and record it (commands, tests)."""
        order = await self._order(order_id)
        if order.payment_intent_id is None:
            return order
        return await self._sync_from_intent(
            order, await self._stripe.retrieve_payment_intent(order.payment_intent_id), actor
        )
