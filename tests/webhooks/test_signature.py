"""Stripe webhook signatures: what Stripe's SDK accepts we accept, and every refusal is our error with a reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final, get_args

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.settings import Settings
from gateway.webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    MAX_SIGNATURE_HEADER_BYTES,
    MAX_WEBHOOK_BODY_BYTES,
    SignatureFailure,
    SignatureHeader,
    VerifiedSignature,
    WebhookSignatureError,
    parse_signature_header,
    parse_webhook_secrets,
    sign,
    verify_signature,
)

SECRET: Final = "whsec_test_9f86d081884c7d659a2feaa0c55ad015"
OTHER_SECRET: Final = "whsec_test_60303ae22b998861bce3b28f33eec1be"
NOW: Final = 1_705_312_200
BODY: Final = json.dumps(
    {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1"}},
    },
    indent=2,  # pretty-printed, as Stripe and the emulator send it
).encode()
REASONS: Final[frozenset[str]] = frozenset(get_args(SignatureFailure))


def at(moment: float) -> Callable[[], float]:
    """A clock stopped at `moment`."""
    return lambda: moment


def sdk_header(payload: bytes, secret: str = SECRET, timestamp: int = NOW) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )
    return header


def refusal(
    payload: bytes, header: str | None, secrets: tuple[str, ...] = (SECRET,)
) -> WebhookSignatureError:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(payload, header, secrets, now=at(NOW))
    return caught.value


def signature_of(header: str) -> str:
    return header.split("v1=", 1)[1]


def test_accepts_a_header_generated_by_the_stripe_sdk() -> None:
    verified = verify_signature(BODY, sdk_header(BODY), (SECRET,), now=at(NOW))
    assert verified == VerifiedSignature(timestamp=NOW, secret_index=0)


def test_sign_writes_the_header_the_sdk_writes() -> None:
    assert sign(BODY, SECRET, NOW) == sdk_header(BODY)
    assert parse_signature_header(sign(BODY, SECRET, NOW)) == SignatureHeader(
        NOW, (signature_of(sdk_header(BODY)),)
    )


def test_the_body_is_hashed_as_bytes_so_any_body_can_be_checked() -> None:
    # Not UTF-8: the SDK would fail to decode it; we just hash it (and the route refuses it later, as JSON).
    payload = b"\xff\xfe{not json"
    assert verify_signature(payload, sign(payload, SECRET, NOW), (SECRET,), now=at(NOW)).timestamp == NOW


def test_a_tampered_body_is_refused() -> None:
    header = sdk_header(BODY)
    assert refusal(BODY.replace(b"pi_1", b"pi_2"), header).reason == "no_matching_signature"
    assert (
        refusal(json.dumps(json.loads(BODY)).encode(), header).reason == "no_matching_signature"
    )  # re-serialised
    assert refusal(BODY + b"\n", header).reason == "no_matching_signature"


def test_a_wrong_secret_is_refused() -> None:
    assert refusal(BODY, sdk_header(BODY, OTHER_SECRET)).reason == "no_matching_signature"


def test_a_changed_timestamp_breaks_the_signature() -> None:
    forged = sdk_header(BODY).replace(f"t={NOW}", f"t={NOW + 1}")
    assert refusal(BODY, forged).reason == "no_matching_signature"


@pytest.mark.parametrize("age", [0, 1, -1, DEFAULT_TOLERANCE_SECONDS, -DEFAULT_TOLERANCE_SECONDS])
def test_timestamps_within_the_tolerance_are_accepted(age: int) -> None:
    assert verify_signature(BODY, sdk_header(BODY), (SECRET,), now=at(NOW + age)).timestamp == NOW


@pytest.mark.parametrize(
    "age", [DEFAULT_TOLERANCE_SECONDS + 1, -DEFAULT_TOLERANCE_SECONDS - 1, 86_400, -86_400]
)
def test_timestamps_too_old_or_too_far_ahead_are_refused(age: int) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(BODY, sdk_header(BODY), (SECRET,), now=at(NOW + age))
    assert caught.value.reason == "timestamp_outside_tolerance"


def test_the_tolerance_is_a_parameter() -> None:
    header = sdk_header(BODY)
    assert verify_signature(BODY, header, (SECRET,), tolerance=10, now=at(NOW + 10.0)).timestamp == NOW
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_signature(BODY, header, (SECRET,), tolerance=10, now=at(NOW + 10.5))
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_signature(BODY, header, (SECRET,), tolerance=0, now=at(NOW - 1))


def test_a_forgery_with_a_stale_timestamp_reads_as_a_forgery() -> None:
    # The signature is checked first: `timestamp_outside_tolerance` means genuine but late, never forged.
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(BODY, sdk_header(BODY, OTHER_SECRET), (SECRET,), now=at(NOW + 86_400))
    assert caught.value.reason == "no_matching_signature"


VALID: Final = sign(BODY, SECRET, NOW)
MALFORMED: Final[list[tuple[str | None, SignatureFailure]]] = [
    (None, "missing_header"),
    ("", "malformed_header"),
    ("   ", "malformed_header"),
    ("garbage", "malformed_header"),
    (f"v1={signature_of(VALID)}", "malformed_header"),  # no t
    (f"t=,v1={signature_of(VALID)}", "malformed_header"),
    (f"t=abc,v1={signature_of(VALID)}", "malformed_header"),
    (f"t=1.5,v1={signature_of(VALID)}", "malformed_header"),
    (f"t=-{NOW},v1={signature_of(VALID)}", "malformed_header"),
    (f"t=+{NOW},v1={signature_of(VALID)}", "malformed_header"),  # int() would take it
    (f"t= {NOW},v1={signature_of(VALID)}", "malformed_header"),  # int() would take it
    (f"t=1_705_312_200,v1={signature_of(VALID)}", "malformed_header"),  # int() would take it
    (f"t={'9' * 13},v1={signature_of(VALID)}", "malformed_header"),
    (f"t={'9' * 5000},v1={signature_of(VALID)}", "malformed_header"),  # past int()'s digit limit
    (f"t={NOW},t={NOW},{VALID}", "malformed_header"),  # two t: which one?
    (f"{VALID},", "malformed_header"),  # an empty item
    (f"{VALID},,v0=00", "malformed_header"),
    (f"{VALID},v1", "malformed_header"),  # an item that is not key=value
    (f"{VALID},=abc", "malformed_header"),
    (f"{VALID},v0=caf\u00e9", "malformed_header"),  # non-ASCII
    ("t=١٧٠٥٣١٢٢٠٠,v1=00", "malformed_header"),  # Arabic-Indic digits: int() would take them
    (VALID + ",v0=" + "0" * MAX_SIGNATURE_HEADER_BYTES, "malformed_header"),  # huge
    (f"t={NOW}", "no_v1_signature"),
    (f"t={NOW},v0={signature_of(VALID)}", "no_v1_signature"),
    (f"t={NOW},v2={signature_of(VALID)},scheme=x", "no_v1_signature"),
    (f"t={NOW},v1=", "no_matching_signature"),
    (f"t={NOW},v1={signature_of(VALID).upper()}", "no_matching_signature"),  # Stripe's hex is lowercase
    (f"t={NOW},v1={signature_of(VALID)[:-1]}", "no_matching_signature"),
]


@pytest.mark.parametrize(("header", "reason"), MALFORMED)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, reason: SignatureFailure) -> None:
    assert refusal(BODY, header).reason == reason


def test_headers_up_to_the_size_limit_are_read() -> None:
    padded = VALID + ",v0=" + "0" * (MAX_SIGNATURE_HEADER_BYTES - len(VALID) - len(",v0="))
    assert len(padded) == MAX_SIGNATURE_HEADER_BYTES
    assert verify_signature(BODY, padded, (SECRET,), now=at(NOW)).timestamp == NOW
    assert refusal(BODY, padded + "0").reason == "malformed_header"


@pytest.mark.parametrize("position", ["first", "last"])
def test_any_v1_may_match_while_stripe_rolls_its_secret(position: str) -> None:
    stale = signature_of(sign(BODY, OTHER_SECRET, NOW))
    good = signature_of(VALID)
    v1s = [good, stale] if position == "first" else [stale, good]
    header = f"t={NOW},v1={v1s[0]},v1={v1s[1]},v0={stale},v9=future-scheme"
    assert parse_signature_header(header).v1 == tuple(v1s)
    assert verify_signature(BODY, header, (SECRET,), now=at(NOW)).secret_index == 0


def test_v0_is_ignored_even_when_it_would_match() -> None:
    header = f"t={NOW},v0={signature_of(VALID)},v1={'0' * 64}"
    assert refusal(BODY, header).reason == "no_matching_signature"


def test_any_configured_secret_may_match_while_we_roll_ours() -> None:
    secrets = (OTHER_SECRET, SECRET)
    assert verify_signature(BODY, VALID, secrets, now=at(NOW)) == VerifiedSignature(NOW, secret_index=1)
    assert verify_signature(BODY, sign(BODY, OTHER_SECRET, NOW), secrets, now=at(NOW)).secret_index == 0
    assert refusal(BODY, sign(BODY, "whsec_neither", NOW), secrets).reason == "no_matching_signature"


def test_the_callers_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="no webhook secret"):
        verify_signature(BODY, VALID, (), now=at(NOW))
    with pytest.raises(ValueError, match="negative"):
        verify_signature(BODY, VALID, (SECRET,), tolerance=-1, now=at(NOW))


def failures() -> list[WebhookSignatureError]:
    cases = [(BODY, header) for header, _ in MALFORMED]
    cases += [(BODY + b" ", VALID), (BODY, sign(BODY, "whsec_neither", NOW))]
    found = [refusal(payload, header, (SECRET, OTHER_SECRET)) for payload, header in cases]
    with pytest.raises(WebhookSignatureError) as late:
        verify_signature(BODY, VALID, (SECRET, OTHER_SECRET), now=at(NOW + 3600))
    return [*found, late.value]


def test_refusals_never_reveal_a_secret_or_the_expected_signature() -> None:
    expected = {signature_of(sign(BODY, secret, NOW)) for secret in (SECRET, OTHER_SECRET)}
    expected |= {signature_of(sign(BODY + b" ", secret, NOW)) for secret in (SECRET, OTHER_SECRET)}
    errors = failures()
    assert {error.reason for error in errors} == REASONS
    for error in errors:
        shown = f"{error} {error!r} {error.args!r} {vars(error)!r}"
        for secret in (SECRET, OTHER_SECRET):
            assert secret not in shown
            assert secret.removeprefix("whsec_") not in shown
        for signature in expected:
            assert signature not in shown
        assert error.reason in REASONS


header_items = st.one_of(
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(["t", "v1", "v0", "x", ""]), st.text()),
    st.builds(lambda value: f"t={value}", st.integers(min_value=-(10**15), max_value=10**15)),
    st.builds(lambda value: f"v1={value}", st.text("0123456789abcdef", min_size=60, max_size=66)),
    st.text(max_size=8),
)
headers = st.none() | st.text() | st.lists(header_items, max_size=8).map(",".join) | st.text(min_size=4000)


@settings(max_examples=500, deadline=None, database=None)
@given(header=headers, payload=st.binary(max_size=64))
def test_any_header_text_raises_nothing_but_our_error(header: str | None, payload: bytes) -> None:
    # Anything but WebhookSignatureError escapes pytest.raises and fails the test; so does an accepted header,
    # which only a signature under our secrets could be.
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(payload, header, (SECRET, OTHER_SECRET), now=at(NOW))
    assert caught.value.reason in REASONS
    assert SECRET not in str(caught.value)
    parsed = parse_outcome(header)
    if isinstance(parsed, WebhookSignatureError):
        assert parsed.reason in {"missing_header", "malformed_header", "no_v1_signature"}


def parse_outcome(header: str | None) -> SignatureHeader | WebhookSignatureError:
    try:
        return parse_signature_header(header)
    except WebhookSignatureError as error:
        return error


@settings(max_examples=200, deadline=None, database=None)
@given(payload=st.binary(max_size=2048), timestamp=st.integers(min_value=0, max_value=10**12 - 1))
def test_what_we_sign_we_accept(payload: bytes, timestamp: int) -> None:
    header = sign(payload, SECRET, timestamp)
    assert verify_signature(payload, header, (SECRET,), now=at(timestamp)).timestamp == timestamp


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
TAMPERINGS: Final = ["none", "reserialised", "trailing_newline", "other_id", "wrong_secret", "stale"]


@settings(max_examples=150, deadline=None, database=None)
@given(data=json_values, event_id=st.text(min_size=1), tampering=st.sampled_from(TAMPERINGS))
def test_we_agree_with_stripe_construct_event(data: object, event_id: str, tampering: str) -> None:
    event = {"id": event_id, "object": "event", "type": "charge.refunded", "data": {"object": data}}
    sent = json.dumps(event, indent=2, ensure_ascii=False).encode()
    timestamp = int(time.time()) - (DEFAULT_TOLERANCE_SECONDS + 60 if tampering == "stale" else 0)
    header = sdk_header(sent, OTHER_SECRET if tampering == "wrong_secret" else SECRET, timestamp)
    received = {
        "reserialised": json.dumps(event, separators=(",", ":")).encode(),
        "trailing_newline": sent + b"\n",
        "other_id": json.dumps({**event, "id": event_id + "x"}, indent=2, ensure_ascii=False).encode(),
    }.get(tampering, sent)

    try:
        verify_signature(received, header, (SECRET,))
        ours = True
    except WebhookSignatureError:
        ours = False
    try:
        constructed = stripe.Webhook.construct_event(received.decode(), header, SECRET)
        theirs = True
    except stripe.SignatureVerificationError:
        theirs = False
    assert ours == theirs == (tampering == "none")
    if theirs:
        assert constructed.id == event_id


def test_secrets_are_read_from_one_setting() -> None:
    assert parse_webhook_secrets("") == ()
    assert parse_webhook_secrets("  \n") == ()
    assert parse_webhook_secrets(SECRET) == (SECRET,)
    assert parse_webhook_secrets(f"{SECRET},{OTHER_SECRET}") == (SECRET, OTHER_SECRET)
    assert parse_webhook_secrets(f" {SECRET} ,\n {OTHER_SECRET}\t") == (SECRET, OTHER_SECRET)
    assert parse_webhook_secrets(f"{OTHER_SECRET} {SECRET}") == (OTHER_SECRET, SECRET)
    assert parse_webhook_secrets(f"{SECRET},{SECRET}") == (SECRET,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{SECRET},,{OTHER_SECRET}", "entry 2 is empty"),
        (f"{SECRET},", "entry 2 is empty"),
        (f",{SECRET}", "entry 1 is empty"),
        (f"{SECRET} {OTHER_SECRET}, ,", "entry 3 is empty"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "entry 1 is not a `whsec_…`"),
        (f"{SECRET},whsec_", "entry 2 is not a `whsec_…`"),
        (f"{SECRET} {SECRET.upper()}", "entry 2 is not a `whsec_…`"),
    ],
)
def test_bad_secret_lists_are_refused_without_echoing_them(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_webhook_secrets(value)
    for word in value.replace(",", " ").split():
        if word != "whsec_":  # the bare prefix is in the message, as the expected form
            assert word not in str(caught.value)


def test_the_body_limit_fits_stripe_events_and_the_gateway() -> None:
    assert 256 * 1024 < MAX_WEBHOOK_BODY_BYTES <= Settings().gateway_max_body_bytes
