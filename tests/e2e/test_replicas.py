"""Two gateway replicas on one PostgreSQL database, behind nginx: every guarantee holds across processes.

Real parts only: two `gateway serve` processes on their own ports sharing a fresh PostgreSQL schema, Debian's nginx
balancing them round robin (`tests/support/nginx.py`), one Stripe emulator process both talk to, the app's calls
over HTTP with signed tokens, and Stripe's events as the emulator signs them. Rate limits are off here: they are
per replica by design and tested elsewhere; what is tested is what the replicas share through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import stripe

from gateway.store import PaymentStatus, Store, WebhookEventStatus, open_store
from tests.support.gateway_process import GATEWAY, GatewayProcess, gateway_process, replica_env
from tests.support.nginx import UPSTREAM_HEADER, LoadBalancer, load_balancer, nginx_binary
from tests.support.postgres import postgres_schema
from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import bearer_headers
from tests.support.webhook_relay import webhook_relay

ALICE: Final = bearer_headers("alice")
CREATE: Final = "/trpc/stripe.createPaymentIntent"
WEBHOOKS: Final = "/webhooks/stripe"
DEADLINE_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.05
RETRYABLE: Final = frozenset({502, 503, 504})
"""What a client retries (with the same order id, so idempotently): nginx's answers for a replica that died with
the request, and a replica that could not reach its store."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    """None when the connection failed."""
    body: Any
    upstream: str


@dataclass
class Cluster:
    replicas: list[GatewayProcess]
    balancer: LoadBalancer
    database_url: str
    env: dict[str, str]
    emulator: StripeEmulator
    sdk: stripe.StripeClient
    store: Store
    http: aiohttp.ClientSession
    client_retries: Counter[int | None] = field(default_factory=Counter)
    _pending: dict[int, float] = field(default_factory=dict)
    """Calls of `create_until_answered` under way: when each was sent (loop time)."""
    _call_ids: Iterator[int] = field(default_factory=itertools.count)

    def pending_longer_than(self, seconds: float) -> int:
        now = asyncio.get_running_loop().time()
        return sum(1 for since in self._pending.values() if now - since > seconds)

    async def create(self, order_id: str, base_url: str | None = None, amount: int = 2500) -> Answer:
        """One createPaymentIntent, through nginx unless `base_url` names a replica."""
        payload = {"orderId": order_id, "amount": amount, "currency": "eur"}
        url = (base_url or self.balancer.base_url) + CREATE
        try:
            async with self.http.post(url, json=payload, headers=ALICE) as response:
                body: Any = await response.text()
                if response.content_type == "application/json":  # not nginx's own 502 page
                    body = json.loads(body)
                return Answer(response.status, body, response.headers.get(UPSTREAM_HEADER, ""))
        except aiohttp.ClientError:
            return Answer(None, None, "")

    async def create_until_answered(self, order_id: str) -> Answer:
        """What the app does: retry the same call (same order, so the gateway answers it idempotently) while the
        answer says to try again, until a deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_SECONDS
        while True:
            call = next(self._call_ids)
            self._pending[call] = loop.time()
            try:
                answer = await self.create(order_id)
            finally:
                del self._pending[call]
            if answer.status not in RETRYABLE and answer.status is not None:
                return answer
            self.client_retries[answer.status] += 1
            if loop.time() > deadline:
                raise AssertionError(f"createPaymentIntent {order_id} still failing: {answer}")
            await asyncio.sleep(POLL_SECONDS)  # the app's back-off, bounded by the deadline

    async def intents_at_stripe(self) -> Counter[str]:
        """How many PaymentIntents Stripe holds per order id (the emulator is emptied before each test)."""
        listed = await self.sdk.v1.payment_intents.list_async(params={"limit": 100})
        assert not listed.has_more
        return Counter(intent.metadata["order_id"] for intent in listed.data)

    async def pay_at_stripe(self, intent_id: str) -> None:
        """What the phone's PaymentSheet does: confirm with a card, at Stripe, not through the gateway."""
        await self.sdk.v1.payment_intents.confirm_async(intent_id, params={"payment_method": "pm_card_visa"})

    def upstream_of(self, replica: GatewayProcess) -> str:
        return replica.base_url.removeprefix("http://")


@contextlib.contextmanager
def _replicas(tmp_path: Path, env: dict[str, str], count: int) -> Iterator[list[GatewayProcess]]:
    with contextlib.ExitStack() as stack:
        replicas = []
        for number in range(1, count + 1):
            directory = tmp_path / f"replica-{number}"
            directory.mkdir()
            replicas.append(stack.enter_context(gateway_process(directory, env)))
        yield replicas


@pytest.fixture
async def cluster(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> AsyncIterator[Cluster]:
    nginx_binary()  # skip (or fail in CI) before starting anything
    emulator = fresh_stripe_emulator
    async with contextlib.AsyncExitStack() as stack:
        http_client = stripe.AIOHTTPClient()
        stack.push_async_callback(http_client.close_async)
        sdk = stripe.StripeClient(
            emulator.secret_key,
            base_addresses={"api": emulator.api_base},
            http_client=http_client,
            max_network_retries=0,
        )
        database_url = await stack.enter_async_context(postgres_schema())
        env = replica_env(database_url, emulator)
        replicas = stack.enter_context(_replicas(tmp_path, env, 2))
        ports = [int(replica.base_url.rsplit(":", 1)[1]) for replica in replicas]
        balancer = stack.enter_context(load_balancer(tmp_path / "nginx", ports))
        store = await open_store(database_url)
        stack.push_async_callback(store.close)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Cluster(replicas, balancer, database_url, env, emulator, sdk, store, http)


async def test_fifty_concurrent_creates_of_one_order_over_both_replicas_make_one_payment_intent(
    cluster: Cluster,
) -> None:
    answers = await asyncio.gather(*(cluster.create("order-fifty") for _ in range(50)))

    assert {answer.status for answer in answers} == {200}, [a.body for a in answers if a.status != 200]
    assert {answer.upstream for answer in answers} == {cluster.upstream_of(r) for r in cluster.replicas}
    intent_ids = {answer.body["result"]["data"]["paymentIntentId"] for answer in answers}
    assert len(intent_ids) == 1
    assert await cluster.intents_at_stripe() == Counter({"order-fifty": 1})
    order = await cluster.store.get_order("order-fifty")
    assert order is not None
    assert order.payment_intent_id in intent_ids


async def test_one_event_delivered_to_both_replicas_at_once_is_applied_once(cluster: Cluster) -> None:
    async with webhook_relay() as relay:  # keeps what Stripe sends, delivers nothing
        cluster.emulator.register_webhook("relay", relay.url)
        try:
            created = await cluster.create("order-event")
            assert created.status == 200, created.body
            await cluster.pay_at_stripe(created.body["result"]["data"]["paymentIntentId"])
            delivery = next(d for d in await relay.wait_for(1) if d.event_type == "payment_intent.succeeded")
        finally:
            cluster.emulator.unregister_webhook("relay")

        async def deliver(replica: GatewayProcess) -> tuple[int, str]:
            url = replica.base_url + WEBHOOKS
            async with cluster.http.post(url, data=delivery.body, headers=delivery.headers()) as answer:
                return answer.status, (await answer.json()).get("outcome")

        copies = 10
        answers = await asyncio.gather(
            *(deliver(replica) for replica in cluster.replicas for _ in range(copies))
        )

    assert sorted(answers) == sorted([(200, "applied")] + [(200, "duplicate")] * (2 * copies - 1))
    event = await cluster.store.get_webhook_event(delivery.event_id)
    assert event is not None
    assert (event.status, event.deliveries, event.order_id) == (WebhookEventStatus.APPLIED, 20, "order-event")
    order = await cluster.store.get_order("order-event")
    assert order is not None
    assert order.status is PaymentStatus.SUCCEEDED
    applied = [e for e in await cluster.store.list_webhook_events(order_id="order-event")]
    assert [e.id for e in applied] == [delivery.event_id]


async def _until(check: Any, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)  # the poll interval, bounded by the deadline
    return value


async def _gateway_command(replica: GatewayProcess, env: dict[str, str], *arguments: str) -> None:
    """`gateway <arguments>` run in the replica's directory with its environment; fails the test unless it exits 0."""
    command = await asyncio.create_subprocess_exec(
        str(GATEWAY),
        *arguments,
        cwd=replica.directory,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(DEADLINE_SECONDS):
        output, _ = await command.communicate()
    assert command.returncode == 0, output.decode(errors="replace")


async def test_maintenance_switched_through_one_replica_is_seen_by_the_other(cluster: Cluster) -> None:
    first, second = cluster.replicas
    for number, replica in enumerate(cluster.replicas):  # both have read the switch (off) and keep it a while
        answer = await cluster.create(f"order-before-{number}", replica.base_url)
        assert answer.status == 200, answer.body

    message = "Payments pause for the database upgrade"
    # An operator on the first replica's host, with its configuration.
    await _gateway_command(first, cluster.env, "maintenance", "on", "--message", message)

    counter = itertools.count()

    def refused_by(replica: GatewayProcess) -> Any:
        async def check() -> Answer | None:
            answer = await cluster.create(f"order-during-{next(counter)}", replica.base_url)
            return answer if answer.status != 200 else None

        return check

    for replica in (second, first):
        answer = await _until(refused_by(replica), f"{replica.base_url} to refuse payments")
        assert answer.status == 503
        assert answer.body["error"]["message"] == message
        assert answer.body["error"]["data"]["code"] == "SERVICE_UNAVAILABLE"
        async with cluster.http.get(replica.base_url + "/metrics/payments/health") as response:
            health = await response.json()
        assert health["checks"]["maintenance"]["enabled"] is True
        assert health["checks"]["maintenance"]["message"] == message

    await _gateway_command(first, cluster.env, "maintenance", "off")

    def accepted_by(replica: GatewayProcess) -> Any:
        async def check() -> bool:
            return (await cluster.create(f"order-after-{next(counter)}", replica.base_url)).status == 200

        return check

    for replica in cluster.replicas:
        await _until(accepted_by(replica), f"{replica.base_url} to take payments again")


ORDERS: Final = 40
CLIENTS: Final = 8
FREEZE_AFTER: Final = 12
"""Orders created (of ORDERS) when the first replica is frozen, then killed: the rest of the load meets one
replica."""
STUCK_SECONDS: Final = 2.0
"""A call or delivery unanswered this long is at the frozen replica (the live one answers in milliseconds)."""


async def test_a_replica_killed_mid_load_loses_no_event_and_retried_calls_succeed(cluster: Cluster) -> None:
    """The cut is made certain, not left to timing: the victim is first frozen (SIGSTOP), so nginx keeps handing
    it its share of calls and Stripe deliveries, which its kernel accepts and nobody answers; once some of each
    are stuck there, it is SIGKILLed with them in flight. nginx answers those 502 (a POST already sent is not
    replayed); the app and Stripe retry them, and the survivor takes the retries."""
    victim, survivor = cluster.replicas
    balancer_webhooks = cluster.balancer.base_url + WEBHOOKS
    async with webhook_relay(target=balancer_webhooks) as stripe_deliveries:  # Stripe's retries included
        cluster.emulator.register_webhook("load-balancer", stripe_deliveries.url)
        try:
            intents: dict[str, str] = {}
            answered_by: set[str] = set()
            enough_created = asyncio.Event()

            async def client(orders: list[str]) -> None:
                for order_id in orders:
                    answer = await cluster.create_until_answered(order_id)
                    assert answer.status == 200, answer.body
                    intents[order_id] = answer.body["result"]["data"]["paymentIntentId"]
                    answered_by.add(answer.upstream.split(", ")[-1])  # the replica that answered
                    if len(intents) >= FREEZE_AFTER:
                        enough_created.set()
                    await cluster.pay_at_stripe(intents[order_id])

            async def some_of_each_stuck() -> bool:
                return cluster.pending_longer_than(STUCK_SECONDS) >= 1 and (
                    stripe_deliveries.pending_longer_than(STUCK_SECONDS) >= 1
                )

            async def killer() -> int:
                await enough_created.wait()
                victim.process.send_signal(signal.SIGSTOP)
                await _until(some_of_each_stuck, "calls and deliveries stuck at the frozen replica")
                victim.process.kill()  # SIGKILL: no shutdown; transactions and requests cut where they are
                victim.process.wait()
                return len(intents)

            order_ids = [f"order-load-{n:02d}" for n in range(ORDERS)]
            kill = asyncio.create_task(killer())
            try:
                await asyncio.gather(*(client(order_ids[c::CLIENTS]) for c in range(CLIENTS)))
            finally:
                kill.cancel()  # if a client failed before the kill
            created_before_kill = await kill

            async def every_order_paid() -> bool:
                for order_id in order_ids:
                    order = await cluster.store.get_order(order_id)
                    if order is None or order.status is not PaymentStatus.SUCCEEDED:
                        return False
                return True

            await _until(every_order_paid, "every order to be paid in the store")
            await stripe_deliveries.settled()  # the last acknowledgements reach the relay after the commits
        finally:
            cluster.emulator.unregister_webhook("load-balancer")

    assert created_before_kill < ORDERS, "the replica was killed after the load, not during it"
    assert victim.process.returncode == -signal.SIGKILL
    assert answered_by == {cluster.upstream_of(victim), cluster.upstream_of(survivor)}
    # Calls and deliveries were cut by the kill, and retried.
    assert cluster.client_retries[502] >= 1, cluster.client_retries
    assert any(attempt.status == 502 for attempt in stripe_deliveries.attempts)
    # One PaymentIntent per order, whatever replica each call (and each retry) reached.
    assert sorted(intents) == order_ids
    assert await cluster.intents_at_stripe() == Counter(dict.fromkeys(order_ids, 1))
    for order_id, intent_id in intents.items():
        order = await cluster.store.get_order(order_id)
        assert order is not None
        assert order.payment_intent_id == intent_id
    # Every event Stripe sent was acknowledged in the end, and every acknowledged event is recorded and applied.
    succeeded = [d for d in stripe_deliveries.deliveries if d.event_type == "payment_intent.succeeded"]
    assert len(succeeded) == ORDERS
    sent = {delivery.event_id for delivery in stripe_deliveries.deliveries}
    assert stripe_deliveries.acknowledged_event_ids() == sent
    for event_id in sent:
        event = await cluster.store.get_webhook_event(event_id)
        assert event is not None, event_id
        assert event.status is WebhookEventStatus.APPLIED, (event_id, event)
    # The survivor still answers, alone, through nginx.
    answer = await cluster.create("order-after-the-kill")
    # (nginx may try the dead one first again, once it stops counting it as failed: then it names both)
    assert (answer.status, answer.upstream.split(", ")[-1]) == (200, cluster.upstream_of(survivor)), answer
