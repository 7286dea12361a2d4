"""The maintenance switch: stored once, seen by every gateway process on the same store within a second, refusing
payment mutations only (queries, webhooks and health keep answering), and switched by `gateway maintenance`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.errors import ErrorCode, TRPCError
from gateway.maintenance import MaintenanceSwitch
from gateway.store import MAINTENANCE_OFF, StoreUnavailable
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.signature import sign
from tests.support.polling import eventually
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_JWT_SECRET, TEST_QR_SECRET, bearer_headers

ALICE = bearer_headers("alice")
"""The shop's customer: payments need a signed-in caller."""

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).parent / "gateway"
DEADLINE_SECONDS = 20.0
WEBHOOK_SECRET = "whsec_maintenance_test_0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "gateway.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


# -- the switch, in one process ----------------------------------------------------------------------------------


async def test_the_switch_refuses_with_the_message_and_reads_the_store_at_most_once_a_second(
    store: SqliteStore,
) -> None:
    clock = Clock()
    mine, other = MaintenanceSwitch(store, clock=clock), MaintenanceSwitch(store, clock=clock)
    await other.refuse_if_on()  # off: nothing to refuse; `other` now holds "off" for a second

    await mine.switch(True, "Back at 03:30", "operator:alice")

    with pytest.raises(TRPCError) as refused:
        await mine.refuse_if_on()  # the process that switched sees it at once
    assert (refused.value.code, refused.value.message) == (ErrorCode.SERVICE_UNAVAILABLE, "Back at 03:30")
    await other.refuse_if_on()  # still within its second
    clock.now += 1.0
    with pytest.raises(TRPCError):
        await other.refuse_if_on()
    off = await mine.switch(False, "ignored when off", "operator:alice")
    assert (off.enabled, off.message) == (False, "")
    audit = await store.list_audit()
    assert [(entry.action, entry.actor) for entry in audit[:2]] == [
        ("maintenance.off", "operator:alice"),
        ("maintenance.on", "operator:alice"),
    ]


async def test_a_store_that_cannot_answer_does_not_switch_payments_off(store: SqliteStore) -> None:
    switch = MaintenanceSwitch(store)
    assert await switch.current() == MAINTENANCE_OFF
    await store.close()
    with pytest.raises(StoreUnavailable):
        await MaintenanceSwitch(store).current()
    await MaintenanceSwitch(store).refuse_if_on()  # the mutation itself will report the store


# -- two gateway processes, one store, the command ---------------------------------------------------------------


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def shared_env(tmp_path: Path, stripe_emulator: StripeEmulator) -> dict[str, str]:
    stripe_emulator.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV", "DATABASE", "JWT_", "QR_"))
    }
    env |= {
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "JWT_SECRET": TEST_JWT_SECRET,  # the gateways' and `gateway smoke`'s (which signs its token with it)
        "QR_SECRET": TEST_QR_SECRET,
        # Not a test of rate limits: it polls createPaymentIntent from 127.0.0.1 until both gateways refuse, then
        # accept, payments, which may take more mutations than a minute's allowance.
        "GATEWAY_RATE_LIMIT_CLIENT": "0",
        "GATEWAY_RATE_LIMIT_USER": "0",
        "STRIPE_SECRET_KEY": stripe_emulator.secret_key,
        "STRIPE_PUBLISHABLE_KEY": stripe_emulator.publishable_key,
        "STRIPE_API_BASE": stripe_emulator.api_base,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    return env


@pytest.fixture
def gateways(shared_env: dict[str, str], tmp_path: Path) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    try:
        for n in (1, 2):
            port, log = _free_port(), tmp_path / f"gateway-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(GATEWAY), "serve", "--port", str(port)],
                    env=shared_env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Gateway(process, f"http://127.0.0.1:{port}", log))
        yield started
    finally:
        for gateway in started:
            gateway.process.terminate()
        for gateway in started:
            gateway.process.wait(timeout=20)


def maintenance(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY), "maintenance", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


def run_smoke(env: dict[str, str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY), "smoke", "--url", url], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


async def create(http: aiohttp.ClientSession, gateway: Gateway, order_id: str) -> tuple[int, Any]:
    body = {"orderId": order_id, "amount": 2500, "currency": "eur"}
    async with http.post(
        f"{gateway.url}/trpc/stripe.createPaymentIntent", json=body, headers=ALICE
    ) as response:
        return response.status, await response.json()


async def test_maintenance_switched_by_the_command_is_seen_by_two_gateway_processes(
    gateways: list[Gateway], shared_env: dict[str, str], tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:

        async def ready(gateway: Gateway) -> bool:
            assert gateway.process.poll() is None, gateway.log.read_text()
            try:
                async with http.get(f"{gateway.url}/metrics/payments/health") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        for gateway in gateways:
            await eventually(partial(ready, gateway), f"{gateway.url} to answer", DEADLINE_SECONDS)
        assert (await create(http, gateways[0], "before"))[0] == 200

        switched = maintenance(shared_env, tmp_path, "on", "--message", "Paiements suspendus jusqu'à 03:30")
        assert switched.returncode == 0, switched.stderr
        assert "maintenance: ON" in switched.stdout

        async def refused(gateway: Gateway) -> Any:
            status, body = await create(http, gateway, f"during-{gateway.url[-5:]}")
            return body if status == 503 else None

        for gateway in gateways:
            body = await eventually(
                partial(refused, gateway), f"{gateway.url} to refuse payments", DEADLINE_SECONDS
            )
            assert body["error"]["message"] == "Paiements suspendus jusqu'à 03:30"
            assert body["error"]["data"]["code"] == "SERVICE_UNAVAILABLE"
            # Queries, Stripe's webhooks and the health keep answering.
            async with http.get(
                f"{gateway.url}/trpc/stripe.getPaymentStatus?input=%7B%22orderId%22%3A%22before%22%7D",
                headers=ALICE,
            ) as response:
                assert response.status == 200
            event = json.dumps(
                {
                    "id": f"evt_m_{gateway.url[-5:]}",
                    "object": "event",
                    "type": "customer.created",
                    "created": int(time.time()),
                    "livemode": False,
                    "data": {"object": {}},
                }
            ).encode()
            headers = {"Stripe-Signature": sign(event, WEBHOOK_SECRET, int(time.time()))}
            async with http.post(f"{gateway.url}/webhooks/stripe", data=event, headers=headers) as response:
                assert response.status == 200
            async with http.get(f"{gateway.url}/metrics/payments/health") as response:
                health = await response.json()
                assert (response.status, health["status"]) == (200, "degraded")
                assert health["checks"]["maintenance"]["message"] == "Paiements suspendus jusqu'à 03:30"
            async with http.get(f"{gateway.url}/metrics/payments/prometheus") as response:
                assert "gateway_maintenance_enabled 1" in await response.text()

        # The seed's smoke test during maintenance: no PaymentIntent attempted (it would be refused), no failure.
        smoke = run_smoke(shared_env, tmp_path, gateways[0].url)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert 'not attempted: maintenance is on ("Paiements suspendus jusqu\'à 03:30")' in smoke.stdout

        status = maintenance(shared_env, tmp_path, "status", "--json")
        assert json.loads(status.stdout)["enabled"] is True
        assert maintenance(shared_env, tmp_path, "off").returncode == 0

        async def accepted(gateway: Gateway) -> bool:
            return (await create(http, gateway, f"after-{gateway.url[-5:]}"))[0] == 200

        for gateway in gateways:
            await eventually(
                partial(accepted, gateway), f"{gateway.url} to take payments again", DEADLINE_SECONDS
            )


def test_the_command_names_a_missing_database_and_a_misplaced_message(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV", "DATABASE"))
    }
    env |= {"PYTHONPATH": str(REPO), "DATABASE_URL": f"sqlite:///{tmp_path / 'nowhere.sqlite3'}"}

    missing = maintenance(env, tmp_path, "on")
    misplaced = maintenance(env, tmp_path, "off", "--message", "x")

    assert (missing.returncode, misplaced.returncode) == (2, 2)
    assert "no database at" in missing.stderr
    assert "--message goes with `on`" in misplaced.stderr
    assert not (tmp_path / "nowhere.sqlite3").exists()  # never created by a typo
