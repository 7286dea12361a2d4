"""Payment QR codes: `stripe.getPaymentQrCode` for a paid order's owner, `stripe.verifyPaymentQrCode` for staff."""

from __future__ import annotations

from gateway.auth.access import STAFF, USER
from gateway.context import CallContext
from gateway.payments.qr_codes import QR_CODES
from gateway.registry import Router
from procedures.stripe_payments import actor, as_trpc_errors
from schemas.stripe import PaymentQrCode, PaymentQrCodeInput, QrVerification, VerifyPaymentQrCodeInput

__all__ = ["register"]


async def get_payment_qr_code(ctx: CallContext, input: PaymentQrCodeInput) -> PaymentQrCode:
    """A paid order's QR code (a signed token naming the order, and its SVG image), for the order's owner (a guest:
    with the client secret). NOT_FOUND for an order the caller may not reach; CONFLICT while it is not paid or
    once it is fully refunded; PRECONDITION_FAILED when the gateway has no QR_SECRET."""
    with as_trpc_errors():
        return await ctx.services[QR_CODES].issue(
            input.order_id, actor(ctx), input.client_secret or ctx.client_secret
        )


async def verify_payment_qr_code(ctx: CallContext, input: VerifyPaymentQrCodeInput) -> QrVerification:
    """Staff only. Whether a scanned QR code proves a payment now: a genuine signature, the order paid and not
    fully refunded, and with single use on, not scanned before (this scan is then recorded). A refusal is an
    answer with `valid: false` and the reason, not an error."""
    with as_trpc_errors():
        return await ctx.services[QR_CODES].verify(input.token, actor(ctx))


def register(router: Router) -> None:
    router.query(get_payment_qr_code, access=USER)
    router.mutation(verify_payment_qr_code, access=STAFF)
