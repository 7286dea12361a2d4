"""`POST /rpc` (JSON-RPC 2.0) over real HTTP: the production router, without Stripe for the checks that need none,
with the local Stripe emulator for the payment procedures, and @open-rpc/client-js calling every method."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.http.app import METRICS
from gateway.jsonrpc import TRANSPORT
from gateway.settings import Settings
from gateway.store import open_store
from tests.e2e.test_payments import ADMIN, Payments, register_domain
from tests.support.node import NODE_DIR
from tests.support.payment_settings import payment_settings
from tests.support.server import RunningGateway, running_gateway
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_JWT_SECRET, bearer_headers, staff_headers, token_for

ROOT = Path(__file__).resolve().parents[2]
OPENRPC = ROOT / "openrpc.json"
ALICE = bearer_headers("alice")
"""The tests' caller: the payment procedures need a signed-in user (their input is checked after the caller)."""


@pytest.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with running_gateway(Settings(jwt_secret=TEST_JWT_SECRET)) as running:
        yield running


@pytest.fixture
async def payments(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Payments]:
    """The production gateway with the local Stripe emulator and a SQLite store (as tests/e2e/test_payments.py)."""
    settings = payment_settings(fresh_stripe_emulator, tmp_path / "gateway.sqlite3")
    async with running_gateway(settings) as running:
        store = await open_store(settings.database_url)
        try:
            yield Payments(running, settings, fresh_stripe_emulator, store)
        finally:
            await store.close()


async def post(
    base_url: str, body: object, *, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base_url + "/rpc", data=data, headers={"content-type": "application/json", **(headers or {})}
        ) as response,
    ):
        text = await response.text()
        return response.status, (json.loads(text) if text else None), response


def call(method: str, params: object = None, id_: object = 1) -> dict[str, object]:
    request: dict[str, object] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        request["params"] = params
    return request


async def test_a_single_call_answers_the_procedure_output(gateway: RunningGateway) -> None:
    status, body, response = await post(gateway.base_url, call("stripe.getConfig", id_="a"))

    assert status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"].startswith("pay_")
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == "a"
    assert set(body["result"]) == {"publishableKey", "merchantDisplayName", "merchantCountryCode", "testMode"}


async def test_a_batch_answers_each_call_in_order_errors_included(gateway: RunningGateway) -> None:
    batch = [
        call("stripe.getConfig", [], id_=1),
        call("stripe.nothingHere", {}, id_=2),
        {"jsonrpc": "2.0", "method": "stripe.getConfig"},  # a notification: no answer
        call("stripe.getPaymentStatus", {"orderId": 5}, id_=3),
        42,
    ]

    status, body, _ = await post(gateway.base_url, batch, headers=ALICE)

    assert status == 200
    assert [answer["id"] for answer in body] == [1, 2, 3, None]
    assert "result" in body[0]
    assert body[1]["error"]["code"] == -32601
    assert body[1]["error"]["message"] == "Method not found"
    assert body[1]["error"]["data"]["code"] == "NOT_FOUND"
    assert body[1]["error"]["data"]["httpStatus"] == 404
    validation = body[2]["error"]
    assert validation["code"] == -32600
    assert validation["data"]["code"] == "BAD_REQUEST"
    assert validation["data"]["httpStatus"] == 400
    assert [issue["path"] for issue in validation["data"]["issues"]] == [["orderId"]]
    assert body[3]["error"]["code"] == -32600


async def test_notifications_only_answer_204(gateway: RunningGateway) -> None:
    single = await post(gateway.base_url, {"jsonrpc": "2.0", "method": "stripe.getConfig"})
    batch = await post(gateway.base_url, [{"jsonrpc": "2.0", "method": "stripe.getConfig"}] * 2)

    assert (single[0], single[1]) == (204, None)
    assert (batch[0], batch[1]) == (204, None)


async def test_rpc_discover_returns_the_openrpc_document(gateway: RunningGateway) -> None:
    status, body, _ = await post(gateway.base_url, call("rpc.discover"))

    assert status == 200
    assert body["result"] == json.loads(OPENRPC.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("raw", "code", "answer_id"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700, None),
        (b'"just a string"', -32600, None),
        (b"[]", -32600, None),
        (b'{"jsonrpc": "1.0", "id": 7, "method": "stripe.getConfig"}', -32600, 7),
        (b'{"jsonrpc": "2.0", "id": 7, "method": 3}', -32600, 7),
        (b'{"jsonrpc": "2.0", "id": true, "method": "stripe.getConfig"}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": 8, "method": "stripe.getPaymentStatus", "params": ["x"]}', -32602, 8),
        (b'{"jsonrpc": "2.0", "id": 9, "method": "rpc.other"}', -32601, 9),
    ],
)
async def test_malformed_requests_get_json_rpc_errors(
    gateway: RunningGateway, raw: bytes, code: int, answer_id: object
) -> None:
    status, body, _ = await post(gateway.base_url, None, raw=raw, headers=ALICE)

    assert status == 200
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == answer_id
    assert body["error"]["code"] == code
    assert {"code", "httpStatus"} <= set(body["error"]["data"])


async def test_http_rules() -> None:
    async with (
        running_gateway(Settings(gateway_max_body_bytes=1000)) as gateway,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(gateway.base_url + "/rpc") as response:
            assert response.status == 405
            assert response.headers["allow"] == "POST"
        async with session.post(
            gateway.base_url + "/rpc", data=b"{}", headers={"content-type": "text/plain"}
        ) as response:
            assert response.status == 415
        too_big = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"p":"' + b"x" * 2000 + b'"}}'
        status, body, _ = await post(gateway.base_url, None, raw=too_big)
    assert status == 413
    assert body["error"]["data"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_batch_over_the_size_limit_is_one_error() -> None:
    async with running_gateway(Settings(gateway_trpc_max_batch_size=2)) as gateway:
        status, body, _ = await post(gateway.base_url, [call("stripe.getConfig", id_=i) for i in range(3)])

    assert status == 200
    assert body["id"] is None
    assert body["error"]["code"] == -32600


async def test_calls_are_counted_with_transport_jsonrpc(gateway: RunningGateway) -> None:
    await post(
        gateway.base_url,
        [call("stripe.getConfig", id_=1), call("stripe.getPaymentStatus", {}, id_=2)],
        headers=ALICE,
    )

    calls = gateway.app[METRICS].since_start().calls
    assert calls[("stripe.getConfig", "query", TRANSPORT, "OK")] == 1
    assert calls[("stripe.getPaymentStatus", "query", TRANSPORT, "BAD_REQUEST")] == 1


# -- payment procedures (the local Stripe emulator) ---------------------------------------------------------------


async def test_a_notification_runs_the_call(payments: Payments) -> None:
    notification = {
        "jsonrpc": "2.0",
        "method": "stripe.createPaymentIntent",
        "params": {"orderId": "rpc-note", "amount": 1200, "currency": "eur"},
    }

    status, body, _ = await post(payments.gateway.base_url, notification, headers=ALICE)

    assert (status, body) == (204, None)
    order = await payments.store.get_order("rpc-note")
    assert order is not None
    assert order.payment_intent_id is not None


async def test_refund_needs_the_admin_role(payments: Payments) -> None:
    await payments.create("rpc-refund", 2500)
    await payments.pay("rpc-refund")
    refund = call("stripe.refund", {"orderId": "rpc-refund"})
    expired = {"authorization": f"Bearer {token_for('ops-admin', ['admin'], ttl_seconds=-120)}"}

    _, no_token, _ = await post(payments.gateway.base_url, refund)
    _, refused, _ = await post(payments.gateway.base_url, refund, headers=expired)
    _, owner, _ = await post(payments.gateway.base_url, refund, headers=ALICE)  # signed in, not an admin
    assert await payments.store.list_refunds("rpc-refund") == []
    _, admin, _ = await post(payments.gateway.base_url, refund, headers=ADMIN)

    for answer in (no_token, refused):
        assert answer["error"]["code"] == -32001
        assert (answer["error"]["data"]["code"], answer["error"]["data"]["httpStatus"]) == (
            "UNAUTHORIZED",
            401,
        )
    assert "expired" in refused["error"]["message"]
    assert owner["error"]["code"] == -32003
    assert (owner["error"]["data"]["code"], owner["error"]["data"]["httpStatus"]) == ("FORBIDDEN", 403)
    assert admin["result"]["amountRefunded"] == 2500


# -- @open-rpc/client-js ------------------------------------------------------------------------------------------


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


@pytest.mark.node
async def test_open_rpc_client_js_calls_every_method(payments: Payments, tmp_path: Path) -> None:
    document = json.loads(OPENRPC.read_text(encoding="utf-8"))
    await payments.create("rpc-paid", 3000)
    await payments.pay("rpc-paid")
    # Another paid order for the QR code: rpc-paid is fully refunded (before the QR methods, in document order).
    await payments.create("rpc-qr", 2000)
    await payments.pay("rpc-qr")
    _, qr, _ = await post(
        payments.gateway.base_url, call("stripe.getPaymentQrCode", {"orderId": "rpc-qr"}), headers=ALICE
    )
    await register_domain(payments.emulator, "shop.example.com")
    calls = {
        "stripe.getConfig": {},
        "stripe.createPaymentIntent": {
            "params": {"orderId": "rpc-one", "amount": 1500, "currency": "eur"},
            "headers": ALICE,
        },
        "stripe.getPaymentStatus": {"params": {"orderId": "rpc-one"}, "headers": ALICE},
        "stripe.cancelPaymentIntent": {"params": {"orderId": "rpc-one"}, "headers": ALICE},
        "stripe.refund": {"params": {"orderId": "rpc-paid"}, "headers": ADMIN},
        "stripe.checkNativePayAvailability": {"params": {"domain": "shop.example.com"}},
        "stripe.getPaymentQrCode": {"params": {"orderId": "rpc-qr"}, "headers": ALICE},
        "stripe.verifyPaymentQrCode": {
            "params": {"token": qr["result"]["token"]},
            "headers": staff_headers(),
        },
    }
    calls_path = tmp_path / "calls.json"
    calls_path.write_text(json.dumps(calls), encoding="utf-8")

    process = await asyncio.create_subprocess_exec(
        "node",
        "call-all.mjs",
        str(OPENRPC),
        payments.gateway.base_url,
        str(calls_path),
        cwd=NODE_DIR / "openrpc",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    summary = json.loads(stdout)

    assert list(summary) == [method["name"] for method in document["methods"]]
    for method in document["methods"]:
        outcome = summary[method["name"]]
        assert outcome["ok"], (method["name"], outcome)
        schema = _schema(document, method["result"]["schema"])
        missing = set(schema.get("required", [])) - set(outcome["result"])
        assert not missing, (method["name"], missing)
    assert summary["stripe.cancelPaymentIntent"]["result"]["status"] == "canceled"
    assert summary["stripe.refund"]["result"]["amountRefunded"] == 3000
    assert summary["stripe.verifyPaymentQrCode"]["result"]["valid"] is True
