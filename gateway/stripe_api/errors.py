"""Stripe's errors, mapped in one place: first to a `StripeCallError` the payment code can reason about, then to
the tRPC error a client can act on.

| Stripe | kind | tRPC code | what the client should do |
|---|---|---|---|
| CardError (402) | card | PAYMENT_REQUIRED | ask for another card (`data.stripe.declineCode` says why) |
| InvalidRequestError `resource_missing` | not_found | NOT_FOUND | nothing: the object is gone |
| InvalidRequestError, other | invalid_request | BAD_REQUEST | fix the request (`data.stripe.param`) |
| IdempotencyError | idempotency | CONFLICT | send the original request again (same key, other parameters) |
| RateLimitError (429) | rate_limit | TOO_MANY_REQUESTS | retry after `retry-after` seconds |
| APIConnectionError, timeout | connection | BAD_GATEWAY / GATEWAY_TIMEOUT | retry later |
| APIError (5xx, non-JSON) | api | BAD_GATEWAY | retry later |
| AuthenticationError, PermissionError | authentication | INTERNAL_SERVER_ERROR | nothing: our configuration is wrong |

Messages sent to clients never carry Stripe's raw text when it could name our keys or account (authentication
and permission errors); Stripe's request id goes to the log, never a key.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec
import stripe

from gateway.errors import ErrorCode, TRPCError

__all__ = ["FailureKind", "StripeCallError", "classify", "network_failure", "to_trpc_error"]


class FailureKind(enum.StrEnum):
    CARD = "card"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    IDEMPOTENCY = "idempotency"
    RATE_LIMIT = "rate_limit"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    API = "api"
    AUTHENTICATION = "authentication"


class StripeCallError(Exception):
    """A Stripe call that failed, described without the SDK's types (the rest of the gateway never sees them)."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        operation: str,
        code: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{operation}: {kind}: {message}")
        self.kind = kind
        self.message = message
        self.operation = operation
        self.code = code
        self.decline_code = decline_code
        self.param = param
        self.http_status = http_status
        self.request_id = request_id

    @property
    def transient(self) -> bool:
        """Worth retrying later with the same idempotency key."""
        return self.kind in _TRANSIENT


_TRANSIENT: Final = frozenset(
    {
        FailureKind.CONNECTION,
        FailureKind.TIMEOUT,
        FailureKind.API,
        FailureKind.RATE_LIMIT,
        FailureKind.IDEMPOTENCY,
    }
)

_CODES: Final = {
    FailureKind.CARD: ErrorCode.PAYMENT_REQUIRED,
    FailureKind.NOT_FOUND: ErrorCode.NOT_FOUND,
    FailureKind.INVALID_REQUEST: ErrorCode.BAD_REQUEST,
    FailureKind.IDEMPOTENCY: ErrorCode.CONFLICT,
    FailureKind.RATE_LIMIT: ErrorCode.TOO_MANY_REQUESTS,
    FailureKind.CONNECTION: ErrorCode.BAD_GATEWAY,
    FailureKind.TIMEOUT: ErrorCode.GATEWAY_TIMEOUT,
    FailureKind.API: ErrorCode.BAD_GATEWAY,
    FailureKind.AUTHENTICATION: ErrorCode.INTERNAL_SERVER_ERROR,
}

_GENERIC_MESSAGES: Final = {
    FailureKind.IDEMPOTENCY: "This request differs from an earlier one for the same payment operation",
    FailureKind.RATE_LIMIT: "The payment provider is rate limiting requests; retry shortly",
    FailureKind.CONNECTION: "The payment provider could not be reached; retry shortly",
    FailureKind.TIMEOUT: "The payment provider did not answer in time; retry shortly",
    FailureKind.API: "The payment provider failed to answer; retry shortly",
    FailureKind.AUTHENTICATION: "The payment provider refused the gateway's credentials",
}


class _ErrorBody(msgspec.Struct):
    type: str | None = None
    code: str | None = None
    decline_code: str | None = None
    param: str | None = None
    message: str | None = None


class _Envelope(msgspec.Struct):
    error: _ErrorBody | None = None


def _error_body(error: stripe.StripeError) -> _ErrorBody:
    try:
        envelope = msgspec.convert(error.json_body or {}, _Envelope, strict=False)
    except msgspec.ValidationError:
        return _ErrorBody()
    return envelope.error or _ErrorBody()


def _kind(error: stripe.StripeError, body: _ErrorBody) -> FailureKind:
    if isinstance(error, stripe.CardError):
        return FailureKind.CARD
    if isinstance(error, stripe.IdempotencyError):
        return FailureKind.IDEMPOTENCY
    if isinstance(error, stripe.RateLimitError):
        return FailureKind.RATE_LIMIT
    if isinstance(error, stripe.InvalidRequestError):
        return FailureKind.NOT_FOUND if body.code == "resource_missing" else FailureKind.INVALID_REQUEST
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return FailureKind.AUTHENTICATION
    if isinstance(error, stripe.APIConnectionError):
        return FailureKind.TIMEOUT if isinstance(error.__cause__, TimeoutError) else FailureKind.CONNECTION
    return FailureKind.API


def classify(error: stripe.StripeError, operation: str) -> StripeCallError:
    """The SDK's exception as a StripeCallError."""
    body = _error_body(error)
    kind = _kind(error, body)
    message = body.message or error.user_message or str(error) or kind.value
    return StripeCallError(
        kind,
        message,
        operation=operation,
        code=body.code or error.code,
        decline_code=body.decline_code,
        param=body.param,
        http_status=error.http_status,
        request_id=error.request_id,
    )


def network_failure(error: Exception, operation: str) -> StripeCallError:
    """A network error the SDK let through (a response body that stopped arriving, say)."""
    kind = FailureKind.TIMEOUT if isinstance(error, TimeoutError) else FailureKind.CONNECTION
    return StripeCallError(kind, f"{type(error).__name__} talking to Stripe", operation=operation)


def to_trpc_error(failure: StripeCallError) -> TRPCError:
    """What the client sees: a code it can act on, a safe message, and Stripe's own codes under `data.stripe`."""
    code = _CODES[failure.kind]
    message = _GENERIC_MESSAGES.get(failure.kind, failure.message)
    stripe_data: dict[str, object] = {"kind": failure.kind.value}
    if failure.kind in (FailureKind.CARD, FailureKind.INVALID_REQUEST, FailureKind.NOT_FOUND):
        for name, value in (
            ("code", failure.code),
            ("declineCode", failure.decline_code),
            ("param", failure.param),
        ):
            if value:
                stripe_data[name] = value
    headers = {"retry-after": "1"} if failure.kind is FailureKind.RATE_LIMIT else None
    # No `cause`: outside production a cause becomes `data.stack`, and Stripe's own text can name the account or
    # a redacted key. The failure is logged where it happens (StripeApi).
    return TRPCError(code, message, data={"stripe": stripe_data}, headers=headers)
