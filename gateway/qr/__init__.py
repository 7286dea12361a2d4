"""Payment QR codes: signed tokens naming a paid order (`tokens`) and their image (`svg`)."""

from gateway.qr.svg import QUIET_ZONE, qr_svg
from gateway.qr.tokens import (
    MAX_ORDER_ID_LENGTH,
    MAX_TOKEN_LENGTH,
    QrSigner,
    QrSigningDisabled,
    QrTokenError,
    QrTokenFailure,
    VerifiedToken,
    key_id,
)

__all__ = [
    "MAX_ORDER_ID_LENGTH",
    "MAX_TOKEN_LENGTH",
    "QUIET_ZONE",
    "QrSigner",
    "QrSigningDisabled",
    "QrTokenError",
    "QrTokenFailure",
    "VerifiedToken",
    "key_id",
    "qr_svg",
]
