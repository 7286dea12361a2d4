"""Payment QR codes: issued to a paid order's owner, verified by staff (`stripe.getPaymentQrCode`,
`stripe.verifyPaymentQrCode`).

The token (gateway.qr.tokens) only names the order; whether it proves a payment is decided at scan time from the
store: the order must be paid and not fully refunded, and, with GATEWAY_QR_SINGLE_USE, not scanned before (the
first scan is recorded with the staff member's name, in one transaction with its audit line).
"""

from __future__ import annotations

from typing import Final

import msgspec
from loguru import logger

from gateway.errors import ErrorCode, TRPCError
from gateway.payments.service import Actor, PaymentService
from gateway.qr import QrSigner, QrTokenError, qr_svg
from gateway.services import ServiceKey
from gateway.settings import Settings
from gateway.store import AuditEntry, PaymentStatus, QrRedemption, Store
from schemas.stripe import PaymentQrCode, QrVerification

__all__ = ["QR_CODES", "QrCodes"]

_NOT_CONFIGURED: Final = "Payment QR codes are not configured on this gateway (QR_SECRET)"


class QrCodes:
    """Create once per application, beside the payment service."""

    def __init__(self, payments: PaymentService, store: Store, settings: Settings) -> None:
        self._payments = payments
        self._store = store
        self._signer = QrSigner.from_settings(settings)
        self._single_use = settings.gateway_qr_single_use

    async def issue(self, order_id: str, actor: Actor, client_secret: str | None) -> PaymentQrCode:
        """The order's QR code, for whoever may reach the order (NOT_FOUND otherwise, as for any order); CONFLICT
        while it is not paid or once it is fully refunded."""
        if not self._signer.enabled:
            raise TRPCError(ErrorCode.PRECONDITION_FAILED, _NOT_CONFIGURED)
        # The status as getPaymentStatus gives it: Stripe is asked about an unfinished payment at most every 2 s per
        # order, so nobody can spend the account's Stripe rate limit by asking for codes.
        status = await self._payments.payment_status(order_id, actor, client_secret)
        if status.status != PaymentStatus.SUCCEEDED.value:
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order_id}" is not paid (yet): no payment QR code')
        if status.refund_status == "full":
            raise TRPCError(ErrorCode.CONFLICT, f'Order "{order_id}" is refunded: its QR code proves nothing')
        token = self._signer.sign(order_id)
        return PaymentQrCode(order_id=order_id, token=token, svg=qr_svg(token))

    async def verify(self, token: str, actor: Actor) -> QrVerification:
        """Whether a scanned token proves a payment now. A refusal is an answer (`valid: false` and why), not an
        error: the person at the door needs the reason, whatever was scanned."""
        if not self._signer.enabled:
            raise TRPCError(ErrorCode.PRECONDITION_FAILED, _NOT_CONFIGURED)
        try:
            verified = self._signer.verify(token)
        except QrTokenError as refused:
            return self._answer(actor, QrVerification(valid=False, reason=refused.reason))
        order = await self._store.get_order(verified.order_id)
        if order is None:  # signed by us, so it named an order once (a store restored from an older backup)
            return self._answer(actor, QrVerification(valid=False, reason="unknown_order"))
        facts = QrVerification(
            valid=False,
            order_id=order.order_id,
            amount=order.amount_received or order.amount,
            currency=order.currency,
            amount_refunded=order.amount_refunded,
        )
        if order.status is not PaymentStatus.SUCCEEDED:
            return self._answer(actor, _with(facts, reason="not_paid"))
        if order.amount_refunded >= order.amount_received > 0:
            return self._answer(actor, _with(facts, reason="refunded"))
        if self._single_use:
            audit = AuditEntry(
                action="qr_code.redeemed",
                actor=actor.id,
                request_id=actor.request_id,
                order_id=order.order_id,
                details={"keyId": verified.key_id},
            )
            redemption, first = await self._store.redeem_qr(
                QrRedemption(
                    order_id=order.order_id,
                    key_id=verified.key_id,
                    redeemed_at="",
                    redeemed_by=actor.id,
                    request_id=actor.request_id,
                ),
                audit,
            )
            facts = _with(facts, redeemed_at=redemption.redeemed_at)
            if not first:
                return self._answer(actor, _with(facts, reason="already_used"))
        return self._answer(actor, _with(facts, valid=True))

    @staticmethod
    def _answer(actor: Actor, verification: QrVerification) -> QrVerification:
        # Every scan is in the logs with who scanned it (the token itself never is: it names an order).
        logger.bind(
            actor=actor.id,
            orderId=verification.order_id,
            valid=verification.valid,
            reason=verification.reason,
        ).info("qr_code_verified")
        return verification


def _with(verification: QrVerification, **changes: object) -> QrVerification:
    return msgspec.structs.replace(verification, **changes)


QR_CODES: Final = ServiceKey[QrCodes]("qr_codes")
