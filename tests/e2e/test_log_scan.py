"""The log contract and the seed's GDPR rule over a whole payment flow, end to end.

A realistic run — the app's configuration, a signed-in user's payment with a customer (e-mail and name), paid at
the local Stripe emulator the way `gateway dev pay` pays, its webhook applied, its status, a partial refund by an
admin, a cancelled order, and the errors clients and attackers cause (invalid input, unknown orders and procedures,
a refund without a token and one by a user who is not an admin, forged, unsigned and expired bearer tokens, a
forged webhook, Stripe unreachable) — through the real @trpc/client against the gateway on a real
port with a real SQLite file, every log line captured. Then:

- every line is one JSON object with the seed's `timestamp` (ISO 8601, milliseconds, Z), a `level` and an `event`;
- every request has exactly one line saying how it ended; every payment request (a `stripe.*` call) also one
  `payment_request_started`, paired by `requestId`, and each pair with the seed's fields;
- every other line written while a request was served (Stripe failures, webhooks) names that request;
- no line holds a secret (Stripe key, webhook secret, JWT_SECRET, any bearer token sent — the JWTs used, or
  anything shaped like a JWT —, a client secret or ephemeral key the client received), a customer's e-mail address
  or name, a card number, or a client's whole IP address;
- each refused token is logged with its reason (never the token).

The forbidden values are the run's own: random keys and tokens for this gateway, the secrets the client received.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.store import PaymentStatus, WebhookEventStatus, open_store
from tests.e2e.test_payments import Payments, error_of
from tests.e2e.test_webhooks import eventually
from tests.support.logs import captured_logs
from tests.support.payment_settings import payment_settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import token_for, unsigned_token

pytestmark = pytest.mark.node

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUEST_ID = re.compile(r"pay_\d{13}_[0-9a-z]{9}")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
PROCESS_EVENTS = {"payment_services_ready", "store_migrated"}
"""Lines written outside any request (start-up, shutdown): the only ones that may lack a requestId."""
ACCESS_EVENTS = {
    "http_request_completed",
    "http_request_error",
    "payment_request_completed",
    "payment_request_error",
}
SEED_FIELDS = ["requestId", "durationSeconds", "statusCode", "path", "method", "responseSize", "success"]

EMAIL = "Zoe.Martin@Example.org"
OTHER_EMAIL = "jean-pierre.dupont@exemple.fr"
NAME = "Zoé Martin-Lefèvre"
CARD = "4242424242424242"
CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
"""13 to 19 digits, as typed (grouped by spaces or dashes, or not)."""
FULL_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|/\d)")
"""An IPv4 address that is not a network (`203.0.113.0/24`, which logs may hold)."""
SECRET_SHAPES = {
    "a Stripe secret key": re.compile(r"[sr]k_(?:test|live)_"),
    "a webhook secret": re.compile(r"whsec_"),
    "a client secret": re.compile(r"(?:pi|seti)_[A-Za-z0-9]+_secret_"),
    "an ephemeral key": re.compile(r"ek_(?:test|live)_"),
    "a bearer token": re.compile(r"(?i)bearer\s"),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),
}


def strings_in(value: object) -> Iterator[str]:
    """Every string in a decoded line, keys included (a value escaped in the raw line is plain here)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


async def run_flow(payments: Payments, http: aiohttp.ClientSession, tokens: dict[str, str]) -> dict[str, str]:
    """The flow, as `tokens["user"]` (the shop's customer), `tokens["admin"]` and the forged tokens; returns what the
    client received that must never be logged (name -> value)."""
    payments.caller = {"authorization": f"Bearer {tokens['user']}"}
    admin = {"authorization": f"Bearer {tokens['admin']}"}
    received: dict[str, str] = {}

    config = await payments.call("getConfig")
    assert config["ok"], config
    paid = await payments.create(
        "scan-1",
        2500,
        customer={"email": EMAIL, "name": NAME},
        description="Commande scan-1",
        metadata={"note": f"client typed {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]} here"},
    )
    received |= {"client secret": paid["clientSecret"], "ephemeral key": paid["ephemeralKey"]}
    canceled = await payments.create("scan-2", 1200)
    received["other client secret"] = canceled["clientSecret"]
    cancel = await payments.call("cancelPaymentIntent", {"orderId": "scan-2"}, mutation=True)
    assert cancel["ok"], cancel

    assert await payments.pay("scan-1") == "succeeded"

    async def succeeded() -> bool:
        order = await payments.store.get_order("scan-1")
        return order is not None and order.status is PaymentStatus.SUCCEEDED

    await eventually(succeeded, "the payment_intent.succeeded webhook")
    assert (await payments.status("scan-1"))["status"] == "succeeded"
    refund = await payments.call(
        "refund", {"orderId": "scan-1", "amount": 1000}, mutation=True, headers=admin
    )
    assert refund["ok"], refund

    async def refund_applied() -> bool:
        events = await payments.store.list_webhook_events(
            order_id="scan-1", status=WebhookEventStatus.APPLIED
        )
        return "charge.refunded" in {event.type for event in events}

    await eventually(refund_applied, "the charge.refunded webhook")

    # Errors, batched as the app would send them (as the signed-in user: the refund is not theirs to make).
    invalid, unknown, conflict, not_admin = await payments.calls(
        [
            (
                "createPaymentIntent",
                {"orderId": "scan-3", "amount": 0, "currency": "eur", "customer": {"email": OTHER_EMAIL}},
                True,
            ),
            ("getPaymentStatus", {"orderId": "no-such-order"}, False),
            ("createPaymentIntent", {"orderId": "scan-1", "amount": 2500, "currency": "eur"}, True),
            ("refund", {"orderId": "scan-1"}, True),
        ]
    )
    assert [error_of(r)["code"] for r in (invalid, unknown, conflict, not_admin)] == [
        "BAD_REQUEST",
        "NOT_FOUND",
        "CONFLICT",
        "FORBIDDEN",
    ]
    no_token = await payments.call("refund", {"orderId": "scan-1"}, mutation=True, headers={})
    assert error_of(no_token)["code"] == "UNAUTHORIZED"
    for kind in ("forged", "unsigned", "expired"):  # each refused, with its reason logged
        refused = await payments.call(
            "refund",
            {"orderId": "scan-1"},
            mutation=True,
            headers={"authorization": f"Bearer {tokens[kind]}"},
        )
        assert error_of(refused)["code"] == "UNAUTHORIZED", kind
    base = payments.gateway.base_url
    async with http.get(f"{base}/trpc/stripe.noSuchProcedure") as response:
        assert response.status == 404
    async with http.get(f"{base}/no/such/page") as response:
        assert response.status == 404
    forged = {"type": "payment_intent.succeeded", "data": {"object": {"receipt_email": EMAIL}}}
    async with http.post(
        f"{base}/webhooks/stripe", json=forged, headers={"Stripe-Signature": "t=1,v1=" + "0" * 64}
    ) as response:
        assert response.status == 400
    for path in ("/metrics/payments", "/metrics/payments/health"):
        async with http.get(base + path) as response:
            assert response.status == 200

    payments.emulator.stop()  # Stripe unreachable: one failed Stripe call, logged within its request
    try:
        unreachable = await payments.call(
            "createPaymentIntent", {"orderId": "scan-4", "amount": 900, "currency": "eur"}, mutation=True
        )
    finally:
        payments.emulator.start()
    assert error_of(unreachable)["code"] == "BAD_GATEWAY"
    return received


def parse_lines(output: io.StringIO) -> list[tuple[str, dict[str, Any]]]:
    lines = []
    for number, raw in enumerate(output.getvalue().splitlines(), 1):
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as error:
            raise AssertionError(f"line {number} is not JSON ({error}): {raw!r}") from None
        assert isinstance(line, dict), f"line {number} is not a JSON object: {raw!r}"
        assert ISO_MS_Z.match(str(line.get("timestamp"))), f"line {number}: timestamp: {raw}"
        assert line.get("level") in LEVELS, f"line {number}: level: {raw}"
        assert EVENT_NAME.match(str(line.get("event"))), f"line {number}: event: {raw}"
        lines.append((raw, line))
    return lines


async def test_a_whole_payment_flow_logs_paired_json_lines_and_no_secret_or_personal_data(
    fresh_stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    emulator = fresh_stripe_emulator
    settings = payment_settings(
        emulator,
        tmp_path / "gateway.sqlite3",
        stripe_secret_key="sk_test_" + secrets.token_hex(16),  # the emulator takes any test key
        stripe_webhook_secret="whsec_" + secrets.token_hex(16),
        jwt_secret=secrets.token_urlsafe(32),
        gateway_log_level="DEBUG",
    )
    # The run's own tokens: the customer's and an admin's, and three the gateway must refuse (signed with another
    # secret, unsigned, expired), all admin tokens so that only the signature or the expiry stops them.
    tokens = {
        "user": token_for("zoe-martin", secret=settings.jwt_secret),
        "admin": token_for("ops-admin", ["admin"], secret=settings.jwt_secret),
        "forged": token_for("ops-admin", ["admin"], secret=secrets.token_urlsafe(32)),
        "unsigned": unsigned_token("ops-admin", ["admin"]),
        "expired": token_for("ops-admin", ["admin"], secret=settings.jwt_secret, ttl_seconds=-600),
    }
    gateway: RunningGateway
    with captured_logs("DEBUG") as output:
        async with running_gateway(settings) as gateway:
            emulator.register_webhook(
                "log-scan", f"{gateway.base_url}/webhooks/stripe", secret=settings.stripe_webhook_secret
            )
            store = await open_store(settings.database_url)
            try:
                async with aiohttp.ClientSession() as http:
                    payments = Payments(gateway, settings, emulator, store)
                    received = await run_flow(payments, http, tokens)
            finally:
                emulator.unregister_webhook("log-scan")
                await store.close()
        # The gateway has stopped: its buffered request lines are flushed.
    lines = parse_lines(output)

    # -- one access line per request, and a start line per payment request, paired by requestId ------------------
    access = [line for _, line in lines if line["event"] in ACCESS_EVENTS]
    assert len(access) == len(gateway.requests), "one line per request saying how it ended"
    by_id = {line["requestId"]: line for line in access}
    assert len(by_id) == len(access), "request ids are unique"
    assert all(REQUEST_ID.fullmatch(request_id) for request_id in by_id), list(by_id)
    payment_paths = [raw.split("?")[0] for _, raw in gateway.requests]
    payment_requests = sum(1 for path in payment_paths if path.startswith("/trpc/") and "stripe." in path)
    started = [line for _, line in lines if line["event"] == "payment_request_started"]
    ended = [line for line in access if line["event"].startswith("payment_request_")]
    # getConfig, 2 creates, cancel, status, refund, the errors' 2 batches (mutations, queries), the refund without
    # a token, the 3 refused tokens, the unknown procedure, the create while Stripe was unreachable.
    assert len(started) == len(ended) == payment_requests == 14
    starts = Counter(line["requestId"] for line in started)
    ends = Counter(line["requestId"] for line in ended)
    assert set(starts.values()) == set(ends.values()) == {1}
    assert set(starts) == set(ends)
    for start in started:
        end = by_id[start["requestId"]]
        assert (start["path"], start["method"]) == (end["path"], end["method"]), start
        assert start["timestamp"] <= end["timestamp"], (start, end)
    for end in access:
        assert [field for field in SEED_FIELDS if field in end] == SEED_FIELDS, end
        assert re.fullmatch(r"\d+\.\d{3}", end["durationSeconds"]), end
        assert isinstance(end["statusCode"], int), end
        assert isinstance(end["responseSize"], int), end
        assert end["success"] is (200 <= end["statusCode"] < 300 and end["statusCode"] != 207), end
        assert end["event"].endswith("_completed" if end["success"] else "_error"), end
    errors = Counter(line["statusCode"] for line in ended if line["event"] == "payment_request_error")
    assert {207, 401, 404, 502} <= set(errors), errors
    refusals = [line for _, line in lines if line["event"] == "bearer_token_refused"]
    assert sorted(line["reason"] for line in refusals) == [
        "algorithm not allowed",
        "bad signature",
        "expired",
    ]

    # -- every other line written during a request names it --------------------------------------------------------
    paths = {request_id: line["path"] for request_id, line in by_id.items()}
    others = [line for _, line in lines if line["event"] not in ACCESS_EVENTS | {"payment_request_started"}]
    for line in others:
        if "requestId" in line:
            assert line["requestId"] in paths, f"names no request this gateway served: {line}"
        else:
            assert line["event"] in PROCESS_EVENTS, f"written during a request without its requestId: {line}"
    stripe_failures = [line for line in others if line["event"] == "stripe_call_failed"]
    assert stripe_failures, "Stripe unreachable was not logged"
    assert all(paths[line["requestId"]].startswith("/trpc/stripe.") for line in stripe_failures)
    webhook_lines = [line for line in others if line["event"].startswith("webhook_")]
    applied = [line["type"] for line in webhook_lines if line["event"] == "webhook_event_applied"]
    assert {"payment_intent.succeeded", "charge.refunded"} <= set(applied), webhook_lines
    assert all(paths[line["requestId"]] == "/webhooks/stripe" for line in webhook_lines)
    [forged] = [line for line in webhook_lines if line["event"] == "webhook_signature_invalid"]
    assert forged["remote"] == "127.0.0.0/24"  # the client's network, never its address

    # -- no secret, no personal data, no card number, no whole client IP address -----------------------------------
    forbidden = {
        "STRIPE_SECRET_KEY": settings.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret,
        "JWT_SECRET": settings.jwt_secret,
        **{f"the {kind} bearer token": token for kind, token in tokens.items()},
        "the customer's e-mail address": EMAIL,
        "another customer's e-mail address": OTHER_EMAIL,
        "the customer's name": NAME,
        "a card number": CARD,
        **received,
    }
    assert all(len(value) >= 12 for value in forbidden.values()), forbidden
    server_addresses = (settings.stripe_api_base, gateway.base_url)  # the configuration, not a client's
    for raw, line in lines:
        text = "\n".join([raw, *strings_in(line)])
        for what, value in forbidden.items():
            assert value.casefold() not in text.casefold(), f"{what} logged: {raw}"
        for what, shape in SECRET_SHAPES.items():
            assert not shape.search(text), f"{what} logged: {raw}"
        assert not CARD_NUMBER.search(REQUEST_ID.sub("", text)), f"a card number logged: {raw}"
        for address in server_addresses:
            text = text.replace(address, "")
        assert not FULL_IPV4.search(text), f"an IP address logged whole: {raw}"
