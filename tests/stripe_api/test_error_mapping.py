"""Stripe's errors, from recorded payloads to the tRPC error a client sees.

A scripted stand-in for Stripe answers each request with a recorded error response (shapes as Stripe's API
reference and a real account return them): the emulator cannot produce most of these faults, so this is the one
place a fake Stripe is used. The real SDK parses each response, so what is tested is our mapping of what the SDK
really raises.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest
from aiohttp import web

from gateway.errors import ErrorCode
from gateway.settings import Settings
from gateway.stripe_api import FailureKind, StripeApi, StripeCallError, to_trpc_error

SECRET = "sk_test_51Hq2ExampleSecretKeyDoNotLeak0000abcd"


@dataclass
class Recorded:
    status: int
    body: object
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


CARD_DECLINED = Recorded(
    402,
    {
        "error": {
            "charge": "ch_3Oq9xYExample",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card has insufficient funds.",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_abc123",
            "type": "card_error",
        }
    },
    headers={"Request-Id": "req_abc123"},
)
RESOURCE_MISSING = Recorded(
    404,
    {
        "error": {
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": "No such payment_intent: 'pi_missing'",
            "param": "intent",
            "type": "invalid_request_error",
        }
    },
)
INVALID_AMOUNT = Recorded(
    400,
    {
        "error": {
            "code": "amount_too_small",
            "doc_url": "https://stripe.com/docs/error-codes/amount-too-small",
            "message": "Amount must be at least €0.50 eur",
            "param": "amount",
            "type": "invalid_request_error",
        }
    },
)
IDEMPOTENCY = Recorded(
    400,
    {
        "error": {
            "message": "Keys for idempotent requests can only be used with the same parameters they were first "
            "used with. Try using a key other than 'order-1' if you meant to execute a different request.",
            "type": "idempotency_error",
        }
    },
)
RATE_LIMIT = Recorded(
    429,
    {
        "error": {
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly. We recommend an exponential backoff.",
            "type": "invalid_request_error",
        }
    },
)
API_ERROR = Recorded(500, {"error": {"message": "An unknown error occurred", "type": "api_error"}})
NOT_JSON = Recorded(502, "<html><body>502 Bad Gateway</body></html>", content_type="text/html")
AUTHENTICATION = Recorded(
    401,
    {
        "error": {
            "message": f"Invalid API Key provided: {SECRET[:8]}****{SECRET[-4:]}",
            "type": "invalid_request_error",
        }
    },
)
PERMISSION = Recorded(
    403,
    {
        "error": {
            "message": "The provided key 'rk_test_****abcd' does not have the required permissions for this "
            "endpoint on account 'acct_1Example'.",
            "type": "invalid_request_error",
        }
    },
)


class ScriptedStripe:
    """Answers every request with the response it was last given; records the requests."""

    def __init__(self) -> None:
        self.response = API_ERROR
        self.hang = asyncio.Event()
        self.hanging = False
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.hanging:
            await self.hang.wait()
        recorded = self.response
        body = (
            recorded.body if isinstance(recorded.body, str) else msgspec.json.encode(recorded.body).decode()
        )
        return web.Response(
            status=recorded.status, text=body, content_type=recorded.content_type, headers=recorded.headers
        )


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedStripe, str]]:
    stripe_fake = ScriptedStripe()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stripe_fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield stripe_fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        stripe_fake.hang.set()
        await runner.cleanup()


def _api(base: str, *, timeout: float = 5.0, retries: int = 0) -> StripeApi:
    return StripeApi(
        Settings(
            stripe_secret_key=SECRET,
            stripe_api_base=base,
            stripe_timeout=timeout,
            stripe_max_network_retries=retries,
        )
    )


async def _failure(api: StripeApi) -> StripeCallError:
    try:
        await api.create_payment_intent(amount=1000, currency="eur", metadata={}, idempotency_key="order-1")
    except StripeCallError as failure:
        return failure
    finally:
        await api.close()
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize(
    ("recorded", "kind", "code", "message_part", "stripe_data"),
    [
        pytest.param(
            CARD_DECLINED,
            FailureKind.CARD,
            ErrorCode.PAYMENT_REQUIRED,
            "insufficient funds",
            {"kind": "card", "code": "card_declined", "declineCode": "insufficient_funds"},
            id="card-declined",
        ),
        pytest.param(
            RESOURCE_MISSING,
            FailureKind.NOT_FOUND,
            ErrorCode.NOT_FOUND,
            "No such payment_intent",
            {"kind": "not_found", "code": "resource_missing", "param": "intent"},
            id="resource-missing",
        ),
        pytest.param(
            INVALID_AMOUNT,
            FailureKind.INVALID_REQUEST,
            ErrorCode.BAD_REQUEST,
            "at least",
            {"kind": "invalid_request", "code": "amount_too_small", "param": "amount"},
            id="invalid-request",
        ),
        pytest.param(
            IDEMPOTENCY,
            FailureKind.IDEMPOTENCY,
            ErrorCode.CONFLICT,
            "differs",
            {"kind": "idempotency"},
            id="idem",
        ),
        pytest.param(
            RATE_LIMIT,
            FailureKind.RATE_LIMIT,
            ErrorCode.TOO_MANY_REQUESTS,
            "retry",
            {"kind": "rate_limit"},
            id="429",
        ),
        pytest.param(API_ERROR, FailureKind.API, ErrorCode.BAD_GATEWAY, "retry", {"kind": "api"}, id="500"),
        pytest.param(
            NOT_JSON, FailureKind.API, ErrorCode.BAD_GATEWAY, "retry", {"kind": "api"}, id="not-json"
        ),
        pytest.param(
            AUTHENTICATION,
            FailureKind.AUTHENTICATION,
            ErrorCode.INTERNAL_SERVER_ERROR,
            "credentials",
            {"kind": "authentication"},
            id="401",
        ),
        pytest.param(
            PERMISSION,
            FailureKind.AUTHENTICATION,
            ErrorCode.INTERNAL_SERVER_ERROR,
            "credentials",
            {"kind": "authentication"},
            id="403",
        ),
    ],
)
async def test_recorded_stripe_errors_map_to_codes_a_client_can_act_on(
    scripted: tuple[ScriptedStripe, str],
    recorded: Recorded,
    kind: FailureKind,
    code: ErrorCode,
    message_part: str,
    stripe_data: dict[str, str],
) -> None:
    fake, base = scripted
    fake.response = recorded

    failure = await _failure(_api(base))
    error = to_trpc_error(failure)

    assert failure.kind is kind
    assert failure.http_status == recorded.status
    assert error.code is code
    assert message_part in error.message
    assert error.data == {"stripe": stripe_data}
    assert SECRET[-4:] not in error.message  # no key, not even Stripe's redacted form of it
    assert "acct_" not in error.message


async def test_card_errors_keep_stripes_request_id_for_the_log(scripted: tuple[ScriptedStripe, str]) -> None:
    fake, base = scripted
    fake.response = CARD_DECLINED

    failure = await _failure(_api(base))

    assert failure.request_id == "req_abc123"
    assert failure.transient is False


async def test_a_rate_limit_tells_the_client_when_to_retry(scripted: tuple[ScriptedStripe, str]) -> None:
    fake, base = scripted
    fake.response = RATE_LIMIT

    error = to_trpc_error(await _failure(_api(base)))

    assert error.headers == {"retry-after": "1"}


async def test_server_errors_are_retried_with_the_same_idempotency_key(
    scripted: tuple[ScriptedStripe, str],
) -> None:
    fake, base = scripted
    fake.response = API_ERROR

    failure = await _failure(_api(base, retries=1))

    assert failure.kind is FailureKind.API
    assert fake.requests == 2


async def test_an_unreachable_stripe_is_bad_gateway() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    failure = await _failure(_api(f"http://127.0.0.1:{port}"))

    assert failure.kind is FailureKind.CONNECTION
    assert failure.transient
    assert to_trpc_error(failure).code is ErrorCode.BAD_GATEWAY


async def test_a_stripe_that_does_not_answer_in_time_is_gateway_timeout(
    scripted: tuple[ScriptedStripe, str],
) -> None:
    fake, base = scripted
    fake.hanging = True

    failure = await _failure(_api(base, timeout=0.3))

    assert failure.kind is FailureKind.TIMEOUT
    assert to_trpc_error(failure).code is ErrorCode.GATEWAY_TIMEOUT
