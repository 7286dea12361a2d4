"""Fuzz `POST /webhooks/stripe` over real HTTP, on the production app with its webhook service and a SQLite store
in a temporary directory (no Stripe needed: the route only records and applies events).

Deliveries:
- not genuine: no Stripe-Signature, junk, Stripe's format with wrong or uppercase hex, the signature of another
  body, of another secret, or of this body and secret at a time outside the tolerance, `v0` only, a repeated `t`;
  with bodies of every kind below. Each must be a 400 `{"error": str}`, and leave the store file unchanged.
- genuine (signed with either configured secret, as Stripe signs during a rotation, now and then with extra `v1`
  and `v0` signatures beside the right one): random bytes and JSON, and events shaped like Stripe's, every member
  present or not, right or of the wrong type: ids from a small set (so that different bodies share an id) or any
  text, applied and other types, `created`, `livemode`, PaymentIntents and Charges about this store's orders
  (whose state moves as the run goes) or others, with any status, amounts, currency, metadata and errors, and
  duplicate keys. Each is delivered twice. The first delivery must be a 200 `{"received": true, "eventId": str,
  "outcome": "applied" | "duplicate" | "ignored"}` that recorded exactly one event row under that id (a new row for
  a first delivery, one more delivery of the known row otherwise), touched no other event, and left a row whose
  status matches the outcome; the event id is the body's `id` when the body is a usable event envelope, else
  `unusable_<sha256 of the body>`; a type the gateway does not apply is `ignored`. The replay must answer the same
  event id as a duplicate (an unusable body: `ignored` again), add one delivery to that row and change nothing else
  (no order, PaymentIntent or audit row).
- any request: answered within DEADLINE_S, never a 5xx (the route's one documented 5xx for a request it reads is
  a 503 when the store is down, which a fuzz cannot cause), with `application/json` holding the route's shape.

- a genuine event whose values no store can hold is acknowledged and recorded `ignored` with the reason as its
  note, never a 500 (which Stripe would retry for three days): a `created` outside signed 64 bits makes the
  envelope unusable (`unusable_<sha256>`); a PaymentIntent or Charge `amount` outside 1..2^63-1, another amount
  outside 0..2^63-1 or a currency that is not 3 lowercase letters is "<type> with a <PaymentIntent|Charge> <member>
  out of range" / "… currency that is not an ISO code"; a `payment_intent.*` event whose metadata names another
  order than the one holding its PaymentIntent is "<type> for a PaymentIntent of another order than its metadata
  names", and moves no payment. The fuzz draws such values among the usual ones, and checks the exact note of every
  first delivery whose outcome the event alone decides (a type not applied, a live-mode event, an object that is not
  a PaymentIntent or Charge, the values above).

Regressions (the tests at the end pin the minimal cases): each of those unstorable values, and the clash of a
PaymentIntent held by one order with metadata naming another, was once a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.services import Services
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.events import APPLIED_TYPES
from gateway.webhooks.route import WEBHOOKS
from gateway.webhooks.service import WebhookService
from tests.fuzz.strategies import event, one_in, usually
from tests.support.threaded_gateway import Answer, HttpClient, ThreadedGateway, threaded_gateway
from tests.trpc.test_request_properties import Json, huge_ints, json_values, odd_json_texts, texts
from tests.webhooks.events import paid_order, unpaid_order

SECRET: Final = "whsec_fuzz_current_0123456789abcdef"
OLD_SECRET: Final = "whsec_fuzz_previous_0123456789abcdef"
SETTINGS: Final = Settings(stripe_secret_key="sk_test_fuzz", stripe_webhook_secret=f"{SECRET}, {OLD_SECRET}")
TOLERANCE_S: Final = 300
INT64: Final = (-(2**63), 2**63 - 1)
ORDERS: Final = ["order-1", "order-2", "order-3"]
INTENTS: Final = ["pi_1", "pi_2", "pi_3", "pi_9"]
OUTCOMES: Final = {"applied", "duplicate", "ignored"}


# --- the gateway and its store ------------------------------------------------------------------------------------


@asynccontextmanager
async def webhook_services(
    path: Path, more: Callable[[Store], Awaitable[object]] | None = None
) -> AsyncIterator[Services]:
    """The webhook service on a real SQLite store holding three orders: unpaid (order-1, pi_1), paid (order-2,
    pi_2) and one still being created, without a PaymentIntent (order-3, which an event may adopt); `more` adds
    others."""
    store = await SqliteStore.open(path)
    try:
        await unpaid_order(store, "order-1", "pi_1")
        await paid_order(store, "order-2", "pi_2")
        await unpaid_order(store, "order-3", intent_id=None)
        if more is not None:
            await more(store)
        services = Services()
        services[WEBHOOKS] = WebhookService(store, SETTINGS)
        yield services
    finally:
        await store.close()


@dataclass
class Webhooks:
    gateway: ThreadedGateway
    database: sqlite3.Connection
    """A read-only connection to the store's file, from the test's thread: what is durably there."""

    @property
    def url(self) -> str:
        return self.gateway.base_url + "/webhooks/stripe"


@pytest.fixture(scope="module")
def webhooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    path = tmp_path_factory.mktemp("webhook-fuzz") / "gateway.sqlite3"
    with threaded_gateway(SETTINGS, services=lambda: webhook_services(path)) as gateway:
        database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield Webhooks(gateway, database)
        finally:
            database.close()


@dataclass(frozen=True)
class Snapshot:
    events: dict[str, tuple[int, str]]
    """id -> (deliveries, status)"""
    orders: list[tuple[Any, ...]]
    intents: int
    audit: int
    holders: dict[str, str] = field(default_factory=dict)
    """PaymentIntent id -> the order holding it (its history first, then the orders' current PaymentIntent)."""


def snapshot(database: sqlite3.Connection) -> Snapshot:
    holders = {
        str(intent): str(order)
        for intent, order in database.execute(
            "SELECT payment_intent_id, order_id FROM orders WHERE payment_intent_id IS NOT NULL"
        )
    }
    holders.update(
        (str(intent), str(order))
        for intent, order in database.execute("SELECT id, order_id FROM payment_intents")
    )
    return Snapshot(
        events={
            row[0]: (row[1], row[2])
            for row in database.execute("SELECT id, deliveries, status FROM webhook_events")
        },
        orders=list(database.execute("SELECT * FROM orders ORDER BY order_id")),
        intents=database.execute("SELECT count(*) FROM payment_intents").fetchone()[0],
        audit=database.execute("SELECT count(*) FROM audit_log").fetchone()[0],
        holders=holders,
    )


# --- signing, as Stripe does: HMAC-SHA256 of "<t>.<raw body>" ------------------------------------------------------


def signature(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def stripe_signature(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={signature(body, secret, stamp)}"


# --- strategies: bodies -------------------------------------------------------------------------------------------


def sendable(text: str) -> bool:
    return not any((char < " " and char != "\t") or char == "\x7f" for char in text)


def not_str(value: Json) -> bool:
    return not isinstance(value, str)


# Values as Stripe's API sends them, and now and then a value no store can hold (past 64 bits, an amount of 0 or
# less, a negative total, a currency that is not an ISO code): a genuine event must be acknowledged and recorded as
# ignored all the same.
MAX_INT64: Final = 2**63 - 1
unstorable_ints = huge_ints | st.sampled_from([2**63, -(2**63), 2**64, -(2**70)])


def or_unstorable(
    right: st.SearchStrategy[Any], unstorable: st.SearchStrategy[Any], n: int = 12
) -> st.SearchStrategy[Any]:
    """`right`, and one time in `n` a value no store can hold."""
    return usually(n).flatmap(lambda is_right: right if is_right else unstorable)


created_times = or_unstorable(st.integers(-MAX_INT64, MAX_INT64), unstorable_ints, 20)
amounts = or_unstorable(
    st.integers(1, 10**7) | st.integers(1, MAX_INT64), st.integers(-5, 0) | unstorable_ints
)
"""A PaymentIntent's or a Charge's `amount`."""
totals = or_unstorable(
    st.integers(0, 10**7) | st.integers(0, MAX_INT64), st.integers(-5, -1) | unstorable_ints
)
"""amount_received, amount_captured, amount_refunded"""
currencies = or_unstorable(
    st.sampled_from(["eur", "usd", "jpy"]), st.sampled_from(["EUR", "", "eu", "euro", "€ur", "usd "]) | texts
)


def or_wrong(
    right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Json], n: int = 20
) -> st.SearchStrategy[Any]:
    """`right`, and one time in `n` a value of the wrong kind."""
    return usually(n).flatmap(lambda is_right: right if is_right else wrong)


@st.composite
def objects(draw: st.DrawFn, required: dict[str, Any], optional: dict[str, Any]) -> dict[str, Json]:
    """An object with `required` members (each left out one time in 30) and any of the `optional` ones, now and then
    with an extra member."""
    obj: dict[str, Json] = {}
    for name, strategy in required.items():
        if draw(usually(30)):
            obj[name] = draw(strategy)
    for name, strategy in optional.items():
        if draw(st.booleans()):
            obj[name] = draw(strategy)
    if draw(one_in(8)):
        obj.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    return obj


def mostly_from(
    usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any], n: int = 6
) -> st.SearchStrategy[Any]:
    """`usual`, and one time in `n` `other` (a rarer but right value: any text where an id is expected, say)."""
    return usually(n).flatmap(lambda is_usual: usual if is_usual else other)


def intents() -> st.SearchStrategy[dict[str, Json]]:
    """PaymentIntents about the store's orders and others; ids and metadata drawn from small sets, so that one
    often names another order than the one holding its PaymentIntent (pi_1 with order-2 or order-3, say)."""
    wrong_str = json_values.filter(not_str)
    metadata = or_wrong(
        mostly_from(
            st.fixed_dictionaries({"order_id": mostly_from(st.sampled_from(ORDERS), texts)}),
            st.dictionaries(texts, texts, max_size=2),
        ),
        json_values,
    )
    error = st.none() | st.fixed_dictionaries(
        {}, optional={k: st.none() | texts for k in ("code", "decline_code", "message")}
    )
    statuses = ["succeeded", "canceled", "requires_payment_method", "processing", "requires_action"]
    shaped = objects(
        {
            "id": or_wrong(mostly_from(st.sampled_from(INTENTS), texts), wrong_str),
            "amount": or_wrong(amounts, json_values),
            "currency": or_wrong(currencies, wrong_str),
            "status": or_wrong(mostly_from(st.sampled_from(statuses), texts), wrong_str),
        },
        {
            "object": st.just("payment_intent"),
            "amount_received": or_wrong(totals, json_values),
            "metadata": metadata,
            "last_payment_error": or_wrong(error, json_values),
            "latest_charge": or_wrong(st.none() | st.just("ch_1"), json_values),
            "client_secret": or_wrong(st.none() | texts, json_values),
            "livemode": or_wrong(st.booleans(), json_values),
        },
    )
    return shaped


def charges() -> st.SearchStrategy[dict[str, Json]]:
    wrong_str = json_values.filter(not_str)
    return objects(
        {
            "id": or_wrong(mostly_from(st.just("ch_1"), texts), wrong_str),
            "amount": or_wrong(amounts, json_values),
            "currency": or_wrong(currencies, wrong_str),  # always sent by Stripe; without it, not an ISO code
        },
        {
            "object": st.just("charge"),
            "amount_refunded": or_wrong(totals, json_values),
            "amount_captured": or_wrong(totals, json_values),
            "refunded": or_wrong(st.booleans(), json_values),
            "payment_intent": or_wrong(mostly_from(st.sampled_from(INTENTS), st.none() | texts), json_values),
            "metadata": or_wrong(
                st.dictionaries(st.just("order_id") | texts, st.sampled_from(ORDERS) | texts, max_size=2),
                json_values,
            ),
        },
    )


OTHER_TYPES: Final = [
    "customer.created",
    "charge.succeeded",
    "payment_intent.created",
    "PAYMENT_INTENT.SUCCEEDED",
]
# Mostly new ids (a first delivery may be applied), some from a small set shared by different bodies, some odd.
FRESH_ID: Final = "evt_fresh_placeholder"
"""Replaced in the body, before it is signed, by an id never used before in the run (`fresh_ids`)."""
fresh_ids: Final = itertools.count(1)
event_ids = mostly_from(
    st.just(FRESH_ID),
    st.sampled_from(["evt_1", "evt_2", "evt_3"]) | texts | st.text(min_size=250, max_size=260),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Json]:
    """An event shaped like Stripe's: usually an applied type carrying the object it is about (a PaymentIntent or a
    Charge), sometimes another type, or the wrong object, or any JSON as `data.object`."""
    event_type = draw(
        mostly_from(st.sampled_from(sorted(APPLIED_TYPES)), st.sampled_from(OTHER_TYPES) | texts, 4)
    )
    about = charges() if event_type == "charge.refunded" else intents()
    obj = draw(mostly_from(about, intents() | charges() | json_values))
    wrong_str = json_values.filter(not_str)
    return draw(
        objects(
            {
                "id": or_wrong(event_ids, wrong_str),
                "type": or_wrong(st.just(event_type), wrong_str),
                "created": or_wrong(created_times, json_values),
                "data": or_wrong(st.just({"object": obj}), json_values),
            },
            {
                "object": st.just("event"),
                "livemode": or_wrong(usually(6).map(lambda test_mode: not test_mode), json_values),
                "api_version": st.just("2024-06-20"),
                "pending_webhooks": st.integers(0, 3),
            },
        )
    )


@dataclass(frozen=True)
class Body:
    data: bytes
    kind: str


def bodies() -> st.SearchStrategy[Body]:
    def duplicated(obj: dict[str, Json], key: str, value: Json) -> Body:
        first = json.dumps({key: value})[1:-1]
        rest = json.dumps(obj)[1:-1]
        return Body(
            ("{" + ", ".join(part for part in (first, rest) if part) + "}").encode(), "duplicate keys"
        )

    def encoded(value: dict[str, Json], pretty: bool) -> Body:
        # Pretty-printed, as Stripe (and the emulator) send them, or compact.
        return Body(json.dumps(value, indent=2 if pretty else None).encode(), "event")

    other = st.one_of(
        st.builds(duplicated, events(), st.sampled_from(["id", "type", "created", "data"]), json_values),
        json_values.map(lambda value: Body(json.dumps(value).encode(), "json")),
        odd_json_texts.map(lambda text: Body(text.encode(), "odd")),
        st.binary(max_size=64).map(lambda data: Body(data, "bytes")),
    )
    return mostly_from(st.builds(encoded, events(), st.booleans()), other, 3)


# --- strategies: signatures ----------------------------------------------------------------------------------------


@st.composite
def forged_signatures(draw: st.DrawFn, body: bytes) -> tuple[str | None, str]:
    """A Stripe-Signature header (None: no header) that does not prove `body` genuine, and its kind."""
    now = int(time.time())
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "junk",
                "random hex",
                "other body",
                "other secret",
                "stale",
                "future",
                "uppercase hex",
                "v0 only",
                "two t",
                "spaces inside",
                "signed t differs",
            ]
        )
    )
    if kind == "missing":
        return None, kind
    if kind == "junk":
        return draw(texts.filter(sendable)), kind
    if kind == "random hex":
        return f"t={now},v1={draw(st.binary(min_size=32, max_size=32)).hex()}", kind
    if kind == "other body":
        return stripe_signature(body + draw(st.binary(min_size=1, max_size=4))), kind
    if kind == "other secret":
        return stripe_signature(body, draw(st.sampled_from(["whsec_other", SECRET + "x", SECRET[:-1]]))), kind
    if kind in ("stale", "future"):
        offset = draw(st.integers(TOLERANCE_S + 5, 10**6))
        return stripe_signature(body, timestamp=now - offset if kind == "stale" else now + offset), kind
    if kind == "uppercase hex":
        return f"t={now},v1={signature(body, SECRET, now).upper()}", kind
    if kind == "v0 only":
        return f"t={now},v0={signature(body, SECRET, now)}", kind
    if kind == "two t":
        return f"t={now},{stripe_signature(body, timestamp=now)}", kind
    if kind == "spaces inside":
        return f"t={now}, v1={signature(body, SECRET, now)}", kind
    return f"t={now + 1},v1={signature(body, SECRET, now)}", kind  # signed t differs


@st.composite
def genuine_signatures(draw: st.DrawFn, body: bytes) -> str:
    """A header Stripe could send for `body`: either secret of the rotation, signed up to a few minutes ago, now and
    then with other `v1` signatures (an older secret's) and a `v0` beside the right one."""
    stamp = int(time.time()) - draw(st.integers(0, TOLERANCE_S - 60))
    parts = [f"t={stamp}", f"v1={signature(body, draw(st.sampled_from([SECRET, OLD_SECRET])), stamp)}"]
    if draw(one_in(4)):
        parts.append(f"v1={signature(body, 'whsec_retired', stamp)}")
    if draw(one_in(4)):
        parts.append(f"v0={signature(body, 'whsec_test', stamp)}")
    head, *rest = parts
    return ",".join([head, *draw(st.permutations(rest))])


content_types = usually(6).flatmap(
    lambda usual: st.just("application/json; charset=utf-8") if usual else st.none() | texts.filter(sendable)
)


# --- checks -------------------------------------------------------------------------------------------------------


def post(
    client: HttpClient,
    webhooks: Webhooks,
    body: bytes,
    signature_header: str | None,
    content_type: str | None,
) -> Answer:
    headers: dict[str, str] = {}
    if signature_header is not None:
        headers["Stripe-Signature"] = signature_header
    if content_type is not None:
        headers["content-type"] = content_type
    return client.request(
        "POST",
        webhooks.url,
        headers=headers,
        body=body,
        skip_auto_headers=("content-type",) if content_type is None else (),
    )


def route_json(answer: Answer) -> dict[str, Any]:
    """The route's body: a JSON object, as `application/json`."""
    assert answer.status < 500, (answer.status, answer.body)
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    value = msgspec.json.decode(answer.body)
    assert isinstance(value, dict), value
    return value


def check_refused(answer: Answer, status: int) -> None:
    value = route_json(answer)
    assert answer.status == status, (answer.status, value)
    assert set(value) == {"error"}, value
    assert isinstance(value["error"], str), value


def check_received(answer: Answer) -> tuple[str, str]:
    """A 200 acknowledgement; returns (event id, outcome)."""
    value = route_json(answer)
    assert answer.status == 200, (answer.status, value)
    assert set(value) == {"received", "eventId", "outcome"}, value
    assert value["received"] is True, value
    assert isinstance(value["eventId"], str), value
    assert value["eventId"], value
    assert value["outcome"] in OUTCOMES, value
    return value["eventId"], value["outcome"]


def usable_envelope(body: bytes) -> dict[str, Any] | None:
    """The event a body is, if it has what every Stripe event has (checked here by hand, not by the gateway's
    decoder): an object with `id` and `type` (text, 1-255 characters), an integer `created` a store can hold
    (signed 64 bits), `data` an object with an `object` member, and `livemode`, if present, a boolean."""
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    ok = (
        all(isinstance(value.get(key), str) and 1 <= len(value[key]) <= 255 for key in ("id", "type"))
        and isinstance(value.get("created"), int)
        and not isinstance(value["created"], bool)
        and -(2**63) < value["created"] < 2**63
        and isinstance(value.get("data"), dict)
        and "object" in value["data"]
        and isinstance(value.get("livemode", False), bool)
    )
    return value if ok else None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def is_metadata(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def is_payment_error(value: object) -> bool:
    return value is None or (
        isinstance(value, dict)
        and all(is_str_or_none(value.get(key)) for key in ("code", "decline_code", "message"))
    )


INTENT_MEMBERS: Final[dict[str, tuple[bool, Callable[[object], bool]]]] = {
    "id": (True, lambda value: isinstance(value, str)),
    "amount": (True, is_int),
    "currency": (True, lambda value: isinstance(value, str)),
    "status": (True, lambda value: isinstance(value, str)),
    "client_secret": (False, is_str_or_none),
    "customer": (False, is_str_or_none),
    "latest_charge": (False, is_str_or_none),
    "amount_received": (False, is_int),
    "metadata": (False, is_metadata),
    "last_payment_error": (False, is_payment_error),
    "livemode": (False, lambda value: isinstance(value, bool)),
}
"""A PaymentIntent as Stripe sends it (the members the gateway reads): name -> (required, check of its type)."""
CHARGE_MEMBERS: Final[dict[str, tuple[bool, Callable[[object], bool]]]] = {
    "id": (True, lambda value: isinstance(value, str)),
    "amount": (True, is_int),
    "amount_captured": (False, is_int),
    "amount_refunded": (False, is_int),
    "refunded": (False, lambda value: isinstance(value, bool)),
    "payment_intent": (False, is_str_or_none),
    "currency": (False, lambda value: isinstance(value, str)),
    "metadata": (False, is_metadata),
}
ANOTHER_ORDER: Final = "{} for a PaymentIntent of another order than its metadata names"


def known_note(envelope: dict[str, Any], holders: dict[str, str]) -> re.Pattern[str] | None:
    """The note the first delivery of a usable event must be recorded `ignored` with, when the event (and which
    order holds which PaymentIntent, `holders`) decides it: a type not applied, a live-mode event, an object that is
    not the PaymentIntent or Charge its type needs, values no store can hold, metadata naming another order than
    the PaymentIntent's. None: the outcome depends on the order's state."""
    type_ = envelope["type"]
    if type_ not in APPLIED_TYPES:
        return _exactly(f"{type_} is recorded, not applied")
    if envelope.get("livemode", False):
        return _exactly("a live-mode event, and the gateway is not")
    obj = envelope["data"]["object"]
    kind, members, totals_ = (
        ("Charge", CHARGE_MEMBERS, ("amount_captured", "amount_refunded"))
        if type_ == "charge.refunded"
        else ("PaymentIntent", INTENT_MEMBERS, ("amount_received",))
    )
    if not isinstance(obj, dict) or not all(
        check(obj[name]) if name in obj else not required for name, (required, check) in members.items()
    ):
        return re.compile(re.escape(f"{type_} without a usable {kind}: ") + ".*", re.DOTALL)
    if not 1 <= obj["amount"] <= MAX_INT64:
        return _exactly(f"{type_} with a {kind} amount out of range")
    for name in totals_:
        if not 0 <= obj.get(name, 0) <= MAX_INT64:
            return _exactly(f"{type_} with a {kind} {name} out of range")
    if re.fullmatch("[a-z]{3}", obj.get("currency", "")) is None:
        return _exactly(f"{type_} with a {kind} currency that is not an ISO code")
    named = obj.get("metadata", {}).get("order_id")
    holder = holders.get(obj["id"]) if kind == "PaymentIntent" else None
    if named is not None and holder is not None and holder != named:
        event("metadata names another order than the PaymentIntent's")
        return _exactly(ANOTHER_ORDER.format(type_))
    return None


def _exactly(note: str) -> re.Pattern[str]:
    return re.compile(re.escape(note))


def check_recorded_once(
    body: Body, event_id: str, outcome: str, note: str | None, before: Snapshot, after: Snapshot
) -> None:
    """The first delivery of `body`, answered (`event_id`, `outcome`), recorded it exactly once (`note`: the row's)."""
    envelope = usable_envelope(body.data)
    unusable_id = "unusable_" + hashlib.sha256(body.data).hexdigest()
    if body.kind == "duplicate keys":
        # Which of two members counts is not JSON's to say: msgspec's decoder refuses a first `"id": null` that a
        # later `"id": "evt_1"` would replace, while a generic decode keeps the last one.
        assert event_id in (unusable_id, envelope["id"] if envelope is not None else unusable_id), event_id
    elif envelope is None:
        assert event_id == unusable_id, event_id
        assert outcome == "ignored", outcome
    else:
        assert event_id == envelope["id"], (event_id, envelope)
        if envelope["type"] not in APPLIED_TYPES:
            assert outcome in ("ignored", "duplicate"), (outcome, envelope)
        wanted = known_note(envelope, before.holders)
        if wanted is not None and event_id not in before.events and body.kind == "event":
            assert outcome == "ignored", (outcome, note, wanted.pattern)
            assert note is not None, (outcome, wanted.pattern)
            assert wanted.fullmatch(note), (note, wanted.pattern)
            event(f"ignored as known: {wanted.pattern.removeprefix(re.escape(envelope['type']))[:40]}")
    changed = {
        key
        for key in before.events.keys() | after.events.keys()
        if before.events.get(key) != after.events.get(key)
    }
    assert changed == {event_id}, (changed, event_id)
    deliveries, status = after.events[event_id]
    if event_id not in before.events:
        event(f"recorded: {outcome}")
        assert deliveries == 1, deliveries
        assert outcome in ("applied", "ignored"), outcome
        assert status == outcome, (status, outcome)
    else:
        event(f"delivered again: {outcome}")
        earlier_deliveries, earlier_status = before.events[event_id]
        assert deliveries == earlier_deliveries + 1, (deliveries, earlier_deliveries)
        if earlier_status != "received":  # an event left `received` by a failed delivery is applied now
            assert outcome == ("ignored" if event_id.startswith("unusable_") else "duplicate"), outcome
    if outcome != "applied":
        assert (after.orders, after.intents, after.audit) == (before.orders, before.intents, before.audit)


def check_replayed(event_id: str, answer: Answer, first: Snapshot, again: Snapshot) -> None:
    replay_id, outcome = check_received(answer)
    assert replay_id == event_id, (replay_id, event_id)
    assert outcome == ("ignored" if event_id.startswith("unusable_") else "duplicate"), outcome
    assert again.events[event_id][0] == first.events[event_id][0] + 1
    assert {**again.events, event_id: None} == {**first.events, event_id: None}
    assert (again.orders, again.intents, again.audit) == (first.orders, first.intents, first.audit)


FUZZ: Final = settings(
    deadline=None,
    phases=[
        Phase.explicit,
        Phase.generate,
        Phase.shrink,
    ],  # no explain phase: slow, and the shrunk case says enough
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_deliveries_that_are_not_genuine_are_400_and_write_nothing(
    client: HttpClient, webhooks: Webhooks, data: st.DataObject
) -> None:
    body: Body = data.draw(bodies(), label="body")
    header, kind = data.draw(forged_signatures(body.data), label="signature")
    event(f"forged: {kind}")
    before = snapshot(webhooks.database)

    answer = post(client, webhooks, body.data, header, data.draw(content_types, label="content type"))

    check_refused(answer, 400)
    assert snapshot(webhooks.database) == before


@settings(FUZZ, max_examples=40)
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]), body=st.binary(max_size=32))
def test_other_methods_are_405_and_write_nothing(
    client: HttpClient, webhooks: Webhooks, method: str, body: bytes
) -> None:
    before = snapshot(webhooks.database)

    answer = client.request(
        method, webhooks.url, headers={"Stripe-Signature": stripe_signature(body)}, body=body
    )

    check_refused(answer, 405)
    assert answer.headers.get("allow") == "POST"
    assert snapshot(webhooks.database) == before


def deliver_twice(client: HttpClient, webhooks: Webhooks, data: st.DataObject) -> None:
    body: Body = data.draw(bodies(), label="body")
    body = Body(body.data.replace(FRESH_ID.encode(), f"evt_fuzz_{next(fresh_ids)}".encode()), body.kind)
    header = data.draw(genuine_signatures(body.data), label="signature")
    content_type = data.draw(content_types, label="content type")
    event(f"signed: {body.kind}")
    before = snapshot(webhooks.database)

    first = post(client, webhooks, body.data, header, content_type)
    event_id, outcome = check_received(first)
    recorded = snapshot(webhooks.database)
    (note,) = webhooks.database.execute(
        "SELECT note FROM webhook_events WHERE id = ?", (event_id,)
    ).fetchone()
    event(f"note: {str(note).split(':')[0][:40]}")
    check_recorded_once(body, event_id, outcome, note, before, recorded)

    replay = post(client, webhooks, body.data, header, content_type)
    check_replayed(event_id, replay, recorded, snapshot(webhooks.database))


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_genuine_deliveries_are_acknowledged_once_recorded_exactly_once(
    client: HttpClient, webhooks: Webhooks, data: st.DataObject
) -> None:
    deliver_twice(client, webhooks, data)


def test_the_checks_catch_a_double_record_and_a_wrong_answer() -> None:
    """The checks can fail: an event recorded twice, a replay that writes, an answer that is not the route's."""
    body = Body(b'{"id": "evt_x", "type": "customer.created", "created": 1, "data": {"object": {}}}', "event")
    before = Snapshot({}, [], 0, 0)
    once = Snapshot({"evt_x": (1, "ignored")}, [], 0, 0)
    note = "customer.created is recorded, not applied"
    check_recorded_once(body, "evt_x", "ignored", note, before, once)
    with pytest.raises(AssertionError):  # two deliveries counted for one
        check_recorded_once(
            body, "evt_x", "ignored", note, before, Snapshot({"evt_x": (2, "ignored")}, [], 0, 0)
        )
    with pytest.raises(AssertionError):  # another event written too
        check_recorded_once(
            body,
            "evt_x",
            "ignored",
            note,
            before,
            Snapshot({**once.events, "evt_y": (1, "ignored")}, [], 0, 0),
        )
    with pytest.raises(AssertionError):  # ignored, but not for the reason the event gives
        check_recorded_once(body, "evt_x", "ignored", "not about an order of this gateway", before, once)
    clash = Body(json.dumps(intent_event("payment_intent.succeeded", id="pi_1")).encode(), "event")
    held = Snapshot({}, [], 0, 0, {"pi_1": "order-1"})
    with pytest.raises(AssertionError):  # applied to the order its metadata names, though another holds it
        check_recorded_once(
            clash, "evt_r", "applied", None, held, Snapshot({"evt_r": (1, "applied")}, [], 0, 0)
        )
    unstorable = Body(json.dumps(intent_event("payment_intent.canceled", currency="EUR")).encode(), "event")
    with pytest.raises(AssertionError):  # a currency no store holds, applied
        check_recorded_once(
            unstorable, "evt_r", "applied", None, before, Snapshot({"evt_r": (1, "applied")}, [], 0, 0)
        )
    with pytest.raises(AssertionError):  # the replay applied again
        check_replayed(
            "evt_x", _answer(200, b'{"received":true,"eventId":"evt_x","outcome":"applied"}'), once, once
        )
    replayed = Snapshot({"evt_x": (2, "ignored")}, [], 0, 1)
    with pytest.raises(AssertionError):  # the replay wrote an audit row
        check_replayed(
            "evt_x",
            _answer(200, b'{"received":true,"eventId":"evt_x","outcome":"duplicate"}'),
            once,
            replayed,
        )
    with pytest.raises(AssertionError):  # a refusal in the wrong shape
        check_refused(_answer(400, b'{"message":"bad signature"}'), 400)


def _answer(status: int, body: bytes) -> Answer:
    return Answer(status, CIMultiDictProxy(CIMultiDict({"content-type": "application/json"})), body)


# --- regressions: inputs that once broke the gateway ---------------------------------------------------------------


def intent_event(event_type: str, **intent: Json) -> dict[str, Json]:
    obj: dict[str, Json] = {
        "id": "pi_r",
        "object": "payment_intent",
        "amount": 2500,
        "amount_received": 2500,
        "currency": "eur",
        "status": "succeeded",
        "metadata": {"order_id": "order-r"},
        **intent,
    }
    return {"id": "evt_r", "type": event_type, "created": 1_705_312_200, "data": {"object": obj}}


def charge_event(**charge: Json) -> dict[str, Json]:
    obj: dict[str, Json] = {
        "id": "ch_r",
        "object": "charge",
        "amount": 2500,
        "amount_refunded": 2500,
        "currency": "eur",
        "payment_intent": "pi_2",
        **charge,
    }
    return {"id": "evt_r", "type": "charge.refunded", "created": 1_705_312_200, "data": {"object": obj}}


def reproduction(name: str, body: dict[str, Json], note: str) -> Any:
    return pytest.param(json.dumps(body).encode(), note, id=name)


UNUSABLE: Final = "not a Stripe event: "
"""How the note of an envelope the gateway cannot use starts."""


@pytest.mark.parametrize(
    ("body", "note"),
    [
        reproduction(
            "created past 64 bits",
            {"id": "evt_r", "type": "customer.created", "created": 2**63, "data": {"object": {}}},
            UNUSABLE,
        ),
        reproduction(
            "created below -(2^63 - 1)",
            {"id": "evt_r", "type": "payment_intent.succeeded", "created": -(2**63), "data": {"object": {}}},
            UNUSABLE,
        ),
        reproduction(
            "amount past 64 bits",
            intent_event("payment_intent.succeeded", amount=2**63),
            "payment_intent.succeeded with a PaymentIntent amount out of range",
        ),
        reproduction(
            "amount 0",
            intent_event("payment_intent.succeeded", amount=0),
            "payment_intent.succeeded with a PaymentIntent amount out of range",
        ),
        reproduction(
            "negative amount_received",
            intent_event("payment_intent.succeeded", amount_received=-1),
            "payment_intent.succeeded with a PaymentIntent amount_received out of range",
        ),
        reproduction(
            "empty currency",
            intent_event("payment_intent.canceled", status="canceled", currency=""),
            "payment_intent.canceled with a PaymentIntent currency that is not an ISO code",
        ),
        reproduction(
            "uppercase currency",
            intent_event("payment_intent.payment_failed", status="requires_payment_method", currency="EUR"),
            "payment_intent.payment_failed with a PaymentIntent currency that is not an ISO code",
        ),
        reproduction(
            "charge amount_refunded past 64 bits",
            charge_event(amount_refunded=2**63),
            "charge.refunded with a Charge amount_refunded out of range",
        ),
        reproduction(
            "negative charge amount",
            charge_event(amount=-1),
            "charge.refunded with a Charge amount out of range",
        ),
        reproduction(
            "charge without a currency",
            {**charge_event(), "data": {"object": {"id": "ch_r", "amount": 2500, "payment_intent": "pi_2"}}},
            "charge.refunded with a Charge currency that is not an ISO code",
        ),
        reproduction(
            "another order's PaymentIntent adopted",
            intent_event("payment_intent.succeeded", id="pi_1", metadata={"order_id": "order-3"}),
            ANOTHER_ORDER.format("payment_intent.succeeded"),
        ),
        reproduction(
            "another order's PaymentIntent, metadata naming a paid order",
            intent_event(
                "payment_intent.canceled", id="pi_1", status="canceled", metadata={"order_id": "order-2"}
            ),
            ANOTHER_ORDER.format("payment_intent.canceled"),
        ),
    ],
)
def test_a_genuine_event_no_store_can_hold_is_ignored_with_its_reason(
    body: bytes, note: str, tmp_path: Path, client: HttpClient
) -> None:
    """Each once a 500 (never acknowledged, retried by Stripe for three days), on a fresh store
    (`webhook_services`' orders, and an unpaid order-r with pi_r): now acknowledged, recorded once as ignored with
    the reason as its note, and no order, PaymentIntent or audit row written; the replay is answered alike."""
    path = tmp_path / "gateway.sqlite3"

    def services() -> AbstractAsyncContextManager[Services]:
        return webhook_services(path, lambda store: unpaid_order(store, "order-r", "pi_r"))

    unusable = note == UNUSABLE
    wanted_id = "unusable_" + hashlib.sha256(body).hexdigest() if unusable else "evt_r"
    with threaded_gateway(SETTINGS, services=services) as gateway:
        database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            before = snapshot(database)
            answers = [
                client.request(
                    "POST",
                    gateway.base_url + "/webhooks/stripe",
                    headers={"Stripe-Signature": stripe_signature(body)},
                    body=body,
                )
                for _ in range(2)
            ]
            after = snapshot(database)
            (recorded_note,) = database.execute(
                "SELECT note FROM webhook_events WHERE id = ?", (wanted_id,)
            ).fetchone()
        finally:
            database.close()
    assert check_received(answers[0]) == (wanted_id, "ignored")
    assert check_received(answers[1]) == (wanted_id, "ignored" if unusable else "duplicate")
    assert after.events == {wanted_id: (2, "ignored")}, after.events
    assert (after.orders, after.intents, after.audit) == (before.orders, before.intents, before.audit)
    if unusable:
        assert str(recorded_note).startswith(note), recorded_note
    else:
        assert recorded_note == note, recorded_note
