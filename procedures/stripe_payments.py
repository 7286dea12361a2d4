"""The payment procedures: create, status, cancel, refund, and Apple Pay / Google Pay availability.

Each is a thin adapter from the call context to the payment service; failures of Stripe and of the store become
tRPC errors here, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from gateway.auth.access import ADMIN, ADMIN_ROLE, PUBLIC, USER
from gateway.context import CallContext
from gateway.errors import ErrorCode, TRPCError
from gateway.maintenance import MAINTENANCE
from gateway.payments import GUEST, PAYMENTS, Actor, PaymentService, user_actor
from gateway.registry import Router
from gateway.store import StoreUnavailable
from gateway.stripe_api import StripeCallError, to_trpc_error
from schemas.stripe import (
    CancelPaymentIntentInput,
    CancelPaymentIntentResult,
    CreatePaymentIntentInput,
    NativePayAvailability,
    NativePayInput,
    OrderInput,
    PaymentIntentResult,
    PaymentStatusResult,
    RefundInput,
    RefundResult,
)

__all__ = ["actor", "as_trpc_errors", "register"]


@contextmanager
def as_trpc_errors() -> Iterator[None]:
    try:
        yield
    except StripeCallError as failure:
        raise to_trpc_error(failure) from None
    except StoreUnavailable as error:
        raise TRPCError(
            ErrorCode.SERVICE_UNAVAILABLE, "The payment store is unavailable; retry shortly", cause=error
        ) from None


def _payments(ctx: CallContext) -> PaymentService:
    return ctx.services[PAYMENTS]


async def _refuse_in_maintenance(ctx: CallContext) -> None:
    """Payment mutations wait while an operator has switched maintenance on (`gateway maintenance on`)."""
    if MAINTENANCE in ctx.services:
        await ctx.services[MAINTENANCE].refuse_if_on()


def actor(ctx: CallContext) -> Actor:
    """The audit trail's name for the caller: `user:<sub>` for a signed-in user, `guest` without a token."""
    caller = ctx.caller
    if caller is None:
        return Actor(GUEST, ctx.request_id)
    return Actor(user_actor(caller.user_id), ctx.request_id, is_admin=caller.has_role(ADMIN_ROLE))


async def create_payment_intent(ctx: CallContext, input: CreatePaymentIntentInput) -> PaymentIntentResult:
    """Create the order's PaymentIntent, or return the one it has: the same order, amount and currency always give
    the same PaymentIntent and client secret. A changed amount updates the unpaid intent; a paid order is a
    CONFLICT. With `customer`, a Stripe Customer is created or reused and an ephemeral key returned.
    SERVICE_UNAVAILABLE while maintenance is on."""
    await _refuse_in_maintenance(ctx)
    with as_trpc_errors():
        if input.client_secret is None and ctx.client_secret is not None:
            input = msgspec.structs.replace(input, client_secret=ctx.client_secret)
        return await _payments(ctx).create_payment_intent(input, actor(ctx))


async def get_payment_status(ctx: CallContext, input: OrderInput) -> PaymentStatusResult:
    """The order's payment status, amounts and refunded total, as the gateway knows them (kept current by
    Stripe's webhooks; checked with Stripe while the payment is not final)."""
    with as_trpc_errors():
        return await _payments(ctx).payment_status(
            input.order_id, actor(ctx), input.client_secret or ctx.client_secret
        )


async def cancel_payment_intent(
    ctx: CallContext, input: CancelPaymentIntentInput
) -> CancelPaymentIntentResult:
    """Cancel the order's unpaid PaymentIntent (idempotent: canceling twice answers `canceled`). A paid order is
    refunded, not canceled (CONFLICT). SERVICE_UNAVAILABLE while maintenance is on."""
    await _refuse_in_maintenance(ctx)
    with as_trpc_errors():
        return await _payments(ctx).cancel(
            input.order_id, actor(ctx), input.client_secret or ctx.client_secret
        )


async def refund(ctx: CallContext, input: RefundInput) -> RefundResult:
    """Admin only. Refund a paid order: everything left without `amount`, else `amount` (at most what is left).
    With `idempotencyKey`, a retried request never refunds twice. SERVICE_UNAVAILABLE while maintenance is on
    (`gateway refund` still works)."""
    await _refuse_in_maintenance(ctx)
    with as_trpc_errors():
        return await _payments(ctx).refund(
            input.order_id,
            input.amount,
            actor(ctx),
            reason=input.reason,
            idempotency_key=input.idempotency_key,
        )


async def check_native_pay_availability(ctx: CallContext, input: NativePayInput) -> NativePayAvailability:
    """Whether Apple Pay and Google Pay are enabled and active for a web domain at Stripe (cached; when Stripe
    cannot be reached, the last known answer)."""
    with as_trpc_errors():
        return await _payments(ctx).native_pay_availability(input.domain)


def register(router: Router) -> None:
    router.mutation(create_payment_intent, access=USER)
    router.query(get_payment_status, access=USER)
    router.mutation(cancel_payment_intent, access=USER)
    router.mutation(refund, access=ADMIN)
    router.query(check_native_pay_availability, access=PUBLIC)
